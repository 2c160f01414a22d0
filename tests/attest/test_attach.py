"""`repro-build image` writes SBOMs and provenance, attaches them without changing the image, pushes them.

The SBOMs are checked by validators that share no code with repro-build: CycloneDX's own
`cyclonedx-python-lib` (JSON schema 1.6, strict) and SPDX's `spdx-tools` (the SPDX 2.3 model and its
validation rules). Both run offline from their bundled schemas.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from reprobuild.attest.bom import SBOM_NAMESPACE
from reprobuild.attest.referrers import CYCLONEDX_JSON, IN_TOTO_JSON, SPDX_JSON, fallback_tag
from reprobuild.manifest.schema import Manifest
from reprobuild.manifest.verify import compare_manifests
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image
from reprobuild.oci.layout import read_index_json, read_layout
from reprobuild.oci.registry import RegistryClient
from reprobuild.oci.validate import validate_layout
from tests.foundation.helpers import git_commit
from tests.image.conftest import GOLDEN_PROJECT
from tests.image.fakebase import fake_base
from tests.manifest.schemacheck import check_manifest_file
from tests.testbed import Registry

pytestmark = pytest.mark.network  # the locked wheels come from the package index (then from the cache)
CLI = (sys.executable, "-m", "reprobuild")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The golden project, committed, built once by the CLI; yields build/cpu."""
    dest = tmp_path_factory.mktemp("attest") / "golden"
    shutil.copytree(GOLDEN_PROJECT, dest)
    fake_base(dest / "fakebase")
    (dest / ".gitignore").write_text("build/\ndist/\n")
    git_commit(dest)
    out = run_cli("image", "--project", str(dest), "-q")
    assert out.returncode == 0, out.stderr
    yield dest / "build" / "cpu"


def _image(out: Path) -> Image:
    image = read_layout(out / "oci", tag="cpu")
    assert isinstance(image, Image)
    return image


def test_sboms_pass_the_cyclonedx_and_spdx_validators(built: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str((built / "sbom.cdx.json").read_text())
    assert error is None, error
    document = parse_file(str(built / "sbom.spdx.json"))
    assert validate_full_spdx_document(document) == []
    names = {p.name: p for p in document.packages}
    assert names["six"].license_declared is not None and str(names["six"].license_declared) == "MIT"
    assert {"golden-app", "six", "libc6", "python3.11-minimal"} <= set(names)


def test_sboms_name_the_image_and_derive_their_ids_from_its_digest(built: Path) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    digest = manifest["outputs"]["manifest_digest"]
    cdx = json.loads((built / "sbom.cdx.json").read_text())
    spdx = json.loads((built / "sbom.spdx.json").read_text())
    assert cdx["serialNumber"] == f"urn:uuid:{uuid.uuid5(SBOM_NAMESPACE, f'{digest} cyclonedx')}"
    assert spdx["documentNamespace"].endswith(str(uuid.uuid5(SBOM_NAMESPACE, f"{digest} spdx")))
    assert cdx["metadata"]["component"]["version"] == digest
    assert cdx["metadata"]["timestamp"] == spdx["creationInfo"]["created"] == "2023-11-14T22:13:20Z"  # the epoch
    six = next(c for c in cdx["components"] if c["name"] == "six")
    pinned = next(w for w in manifest["wheels"] if w["name"] == "six")
    assert six["purl"] == "pkg:pypi/six@1.17.0"
    assert six["hashes"][0]["content"] == pinned["sha256"].removeprefix("sha256:")
    libc = next(c for c in cdx["components"] if c["name"] == "libc6")
    assert libc["purl"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u1?arch=amd64"
    assert "licenses" not in libc  # the fake base has no copyright file: nothing is claimed
    check_manifest_file(built / "manifest.json")  # the published schema, and a byte-identical round trip
    recorded = {a["file"]: a for a in manifest["attestations"]}
    for name in ("sbom.spdx.json", "sbom.cdx.json"):
        assert recorded[name]["sha256"] == str(Digest.of_bytes((built / name).read_bytes()))


def test_attachments_refer_to_the_image_and_leave_it_as_built(built: Path) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    image = _image(built)
    assert str(image.digest) == manifest["outputs"]["manifest_digest"]
    assert image.subject is None and b"artifactType" not in image.manifest_bytes
    entries = read_index_json(built / "oci")
    types = sorted(d.artifact_type for d in entries if d.artifact_type)
    assert types == sorted([SPDX_JSON, CYCLONEDX_JSON, IN_TOTO_JSON])
    for desc in entries:
        if desc.artifact_type:
            art = read_layout(built / "oci", digest=desc.digest)
            assert isinstance(art, Image) and art.subject is not None and art.subject.digest == image.digest
            assert art.config_bytes == b"{}" and art.layers[0].media_type == desc.artifact_type
    # A bare layout path still names the image; our validator, skopeo and umoci accept the layout.
    assert read_layout(built / "oci").digest == image.digest
    validate_layout(built / "oci")
    skopeo = subprocess.run(
        ["skopeo", "inspect", f"oci:{built / 'oci'}:cpu"], capture_output=True, text=True, check=False
    )
    assert skopeo.returncode == 0, skopeo.stderr
    assert json.loads(skopeo.stdout)["Digest"] == str(image.digest)
    umoci = subprocess.run(
        ["umoci", "stat", "--image", f"{built / 'oci'}:cpu"], capture_output=True, text=True, check=False
    )
    assert umoci.returncode == 0, umoci.stderr


def test_provenance_is_derived_from_the_manifest_and_finds_it_again(built: Path, tmp_path: Path) -> None:
    manifest_bytes = (built / "manifest.json").read_bytes()
    statement = json.loads((built / "provenance.json").read_text())
    digest = json.loads(manifest_bytes)["outputs"]["manifest_digest"]
    assert statement["subject"][0]["digest"] == {"sha256": digest.removeprefix("sha256:")}
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    out = run_cli("verify", "--image", f"oci-layout:{built / 'oci'}", "--save-manifest", str(tmp_path / "m.json"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"match: oci-layout:{built / 'oci'} is {digest}")
    assert (tmp_path / "m.json").read_bytes() == manifest_bytes
    archive = run_cli("verify", "--image", f"oci-archive:{built / 'image.tar'}")
    assert archive.returncode == 2 and "keeps no attachments" in archive.stderr and "hint:" in archive.stderr


def test_rebuild_regenerates_identical_sboms_and_names_a_changed_one(built: Path) -> None:
    out = run_cli("verify", str(built / "manifest.json"), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["identical"], report["divergences"]
    recorded = json.loads((built / "manifest.json").read_text())
    edited = json.loads(json.dumps(recorded))
    edited["attestations"][0]["sha256"] = "sha256:" + "0" * 64
    _, divergences = compare_manifests(Manifest.from_json(edited), Manifest.from_json(recorded))
    assert [d.artifact for d in divergences] == [f"attestation {edited['attestations'][0]['file']}"]


def test_push_attaches_through_the_tag_schema_and_keeps_the_digest(built: Path, registry: Registry) -> None:
    project = built.parent.parent
    ref = f"{registry.host}/attest-test/golden:v1"
    for _ in range(2):  # a second push merges into the referrers index instead of duplicating
        out = run_cli("image", "--project", str(project), "--push", ref, "--json", "-q")
        assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)["targets"][0]
    digest = json.loads((built / "manifest.json").read_text())["outputs"]["manifest_digest"]
    assert record["digest"] == digest and record["pushed"] == f"{registry.host}/attest-test/golden@{digest}"
    assert record["attachments"] == {"count": 3, "how": f"tag {fallback_tag(Digest.parse(digest))}"}
    with RegistryClient(registry.host) as client:
        assert client.get_referrers("attest-test/golden", digest) is None  # registry 2.8: no referrers API
        _, _, served = client.get_manifest("attest-test/golden", "v1")
        assert served == digest  # the tag still names the image as built
        index = json.loads(client.get_manifest("attest-test/golden", fallback_tag(Digest.parse(digest)))[0])
    assert sorted(m["artifactType"] for m in index["manifests"]) == sorted([SPDX_JSON, CYCLONEDX_JSON, IN_TOTO_JSON])
    assert all(
        m["annotations"]["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z" for m in index["manifests"]
    )
    gate = run_cli("verify", "--image", ref, "--json")
    assert gate.returncode == 0, gate.stderr
    assert json.loads(gate.stdout)["match"] is True
    assert "sha256-" in gate.stderr  # says where the build manifest came from


@pytest.mark.parametrize("referrers_api", [False, True], ids=["tag-schema", "referrers-api"])
def test_push_sends_the_attachments_with_the_image(built: Path, registry: Registry, referrers_api: bool) -> None:
    """One push: every blob (the image's and its attachments') before the first manifest, the image's
    manifest before anything that refers to it, and the registry's answers to the attachments' manifests
    (``OCI-Subject``) decide whether the fallback index is written: no probe of the referrers API."""
    from tests.attest.referrers_api import registry_with_referrers_api
    from tests.oci.registry.servers import proxy_to

    project = built.parent.parent
    digest = json.loads((built / "manifest.json").read_text())["outputs"]["manifest_digest"]
    repo = f"attest-order-{'api' if referrers_api else 'tags'}/golden"
    with contextlib.ExitStack() as stack:
        if referrers_api:
            proxy, _ = stack.enter_context(registry_with_referrers_api(registry.host))
        else:
            proxy = stack.enter_context(proxy_to(registry.host))
        out = run_cli("image", "--project", str(project), "--push", f"{proxy.host}/{repo}:v1", "--json", "-q")
        assert out.returncode == 0, out.stderr
        seen = list(proxy.seen)
    record = json.loads(out.stdout)["targets"][0]
    tag = fallback_tag(Digest.parse(digest))
    how = "referrers API" if referrers_api else f"tag {tag}"
    assert record["digest"] == digest and record["attachments"] == {"count": 3, "how": how}
    paths = [(e.method, urlsplit(e.path).path.removeprefix(f"/v2/{repo}/")) for e in seen]
    assert not any(path.startswith("referrers/") for _, path in paths)
    manifests = [path.removeprefix("manifests/") for method, path in paths if method == "PUT" and "manifests/" in path]
    first = next(i for i, (method, path) in enumerate(paths) if method == "PUT" and path.startswith("manifests/"))
    assert all(not path.startswith("blobs/") for _, path in paths[first:])  # every blob before any manifest
    assert manifests[0] == digest  # the subject before its referrers
    attachments = set(manifests[1:]) - {"v1", tag}
    assert len(attachments) == 3 and len(manifests) == (5 if referrers_api else 6)
    if not referrers_api:
        assert manifests[-1] == tag  # the fallback index once its attachments are there
