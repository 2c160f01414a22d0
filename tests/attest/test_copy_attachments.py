"""`repro-build copy` carries an image's attachments; `repro-build inspect` lists them.

Between layouts and registries (the real loopback registry, which has no referrers API and so gets the
``sha256-<hex>`` tag schema, and the same registry behind a proxy that adds the API), with every digest
kept, nothing written when an attachment is bad, and a warning where the destination keeps none.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from reprobuild.attest.referrers import (
    CYCLONEDX_JSON,
    IN_TOTO_JSON,
    PREDICATE,
    SPDX_JSON,
    Document,
    artifact,
    attach_to_layout,
    fallback_tag,
    layout_referrers,
)
from reprobuild.cli.main import main
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image
from reprobuild.oci.index import Index, new_index
from reprobuild.oci.layout import read_index_json, read_layout, write_layout
from reprobuild.oci.mediatypes import OCI_INDEX
from reprobuild.oci.registry import RegistryClient
from reprobuild.oci.validate import validate_layout
from reprobuild.oci.values import Descriptor, Platform
from tests.attest.referrers_api import registry_with_referrers_api
from tests.oci.helpers import small_image
from tests.testbed import Engine, Registry

CREATED = "2023-11-14T22:13:20Z"
SLSA = "https://slsa.dev/provenance/v1"
TYPES = sorted([SPDX_JSON, CYCLONEDX_JSON, IN_TOTO_JSON])


def _documents(subject: Descriptor) -> list[Document]:
    spdx = {"spdxVersion": "SPDX-2.3", "packages": [{"name": "six"}, {"name": "libc6"}]}
    cdx = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": n} for n in ("a", "b", "c")]}
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app:cpu", "digest": {"sha256": subject.digest.hex}}],
        "predicateType": SLSA,
        "predicate": {},
    }
    return [
        Document("sbom.spdx.json", SPDX_JSON, canonical_json_bytes(spdx), {}),
        Document("sbom.cdx.json", CYCLONEDX_JSON, canonical_json_bytes(cdx), {}),
        Document("provenance.json", IN_TOTO_JSON, canonical_json_bytes(statement), {PREDICATE: SLSA}),
    ]


def _attach(layout: Path, subject: Descriptor, staging: Path) -> list[Image]:
    staging.mkdir(parents=True, exist_ok=True)
    arts = []
    for doc in _documents(subject):
        blob = staging / f"{subject.digest.hex[:12]}-{doc.name}"
        blob.write_bytes(doc.data)
        arts.append(artifact(subject, doc, blob, created=CREATED))
    attach_to_layout(layout, arts)
    return arts


@pytest.fixture
def attached(tmp_path: Path) -> tuple[Path, Image, list[Image]]:
    """A layout holding a small image tagged `app` and three attachments (SPDX, CycloneDX, provenance)."""
    layout = tmp_path / "src"
    image = small_image(tmp_path / "staging")
    write_layout(layout, image, tag="app")
    return layout, image, _attach(layout, image.descriptor, tmp_path / "docs")


def _copy_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["--quiet", "copy", "--json", *args]) == 0, capsys.readouterr().err
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def _attachments_in(layout: Path, subject: Digest) -> set[Digest]:
    return {a.digest for a in layout_referrers(layout, subject)}


def test_layout_to_layout_copies_attachments_and_keeps_the_digest(
    attached: tuple[Path, Image, list[Image]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, image, arts = attached
    dst = tmp_path / "dst"
    report = _copy_json(capsys, f"oci:{layout}:app", f"oci:{dst}:v1")
    assert report["digest"] == str(image.digest) and report["pinned"] == f"oci-layout:{dst}@{image.digest}"
    copied = report["attachments"]
    assert copied["found"] == f"index.json of {layout}" and copied["written"] == f"index.json of {dst}"
    assert sorted(a["artifact_type"] for a in copied["copied"]) == TYPES
    assert {a["subject"] for a in copied["copied"]} == {str(image.digest)}
    assert {a["digest"] for a in copied["copied"]} == {str(a.digest) for a in arts}
    assert _attachments_in(dst, image.digest) == {a.digest for a in arts}
    assert read_layout(dst, tag="v1").digest == image.digest
    assert read_layout(dst).digest == image.digest  # a bare path still names the image
    validate_layout(dst)


def test_no_attachments_copies_the_image_only(
    attached: tuple[Path, Image, list[Image]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, image, _ = attached
    dst = tmp_path / "dst"
    report = _copy_json(capsys, "--no-attachments", f"oci:{layout}:app", f"oci:{dst}")
    assert report["attachments"] == {
        "copied": [],
        "found": "not copied: --no-attachments",
        "written": "not copied: --no-attachments",
    }
    assert [d.artifact_type for d in read_index_json(dst)] == [None]
    assert report["digest"] == str(image.digest)


def test_a_corrupt_attachment_stops_the_copy_before_anything_is_written(
    attached: tuple[Path, Image, list[Image]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _, arts = attached
    blob = layout / "blobs" / "sha256" / arts[0].layers[0].digest.hex
    blob.write_bytes(blob.read_bytes().replace(b"six", b"sux"))
    dst = tmp_path / "dst"
    assert main(["--quiet", "copy", f"oci:{layout}:app", f"oci:{dst}"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and str(arts[0].layers[0].digest) in err and "Traceback" not in err
    assert not (dst / "index.json").exists()


def test_an_archive_keeps_none_and_the_copy_says_so(
    attached: tuple[Path, Image, list[Image]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, image, _ = attached
    archive = tmp_path / "image.tar"
    assert main(["copy", f"oci:{layout}:app", f"oci-archive:{archive}"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"oci-archive:{archive}@{image.digest}"
    assert f"warning: oci-archive:{archive}: an oci-archive keeps no attachments" in captured.err
    assert "3 attachments" in captured.err
    # From the archive on there is nothing to carry, and nothing to warn about.
    report = _copy_json(capsys, f"oci-archive:{archive}", f"oci:{tmp_path / 'back'}")
    assert report["attachments"] == {"copied": [], "found": "an oci-archive keeps no attachments", "written": "none"}
    assert report["warnings"] == []


@pytest.mark.registry
def test_layout_registry_layout_through_the_tag_schema(
    attached: tuple[Path, Image, list[Image]], registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, image, arts = attached
    repo = f"attachcli/tags-{uuid.uuid4().hex[:8]}"
    tag = fallback_tag(image.digest)
    report = _copy_json(capsys, f"oci:{layout}:app", f"{registry.host}/{repo}:v1")
    assert report["pinned"] == f"{registry.host}/{repo}@{image.digest}"
    assert report["attachments"]["written"] == f"tag {tag}"
    with RegistryClient(registry.host) as client:
        assert client.get_referrers(repo, str(image.digest)) is None  # registry 2.8: no referrers API
        assert client.get_manifest(repo, "v1")[2] == str(image.digest)
        index = json.loads(client.get_manifest(repo, tag)[0])
    assert {m["digest"] for m in index["manifests"]} == {str(a.digest) for a in arts}
    # registry -> registry (another repository), then registry -> layout: the same three, byte for byte.
    other = f"{repo}-copy"
    report = _copy_json(capsys, f"docker://{registry.host}/{repo}:v1", f"{registry.host}/{other}:v2")
    assert report["attachments"]["found"] == f"tag {tag}"
    assert len(report["attachments"]["copied"]) == 3
    back = tmp_path / "back"
    report = _copy_json(capsys, f"{registry.host}/{other}@{image.digest}", f"oci:{back}:app")
    assert report["digest"] == str(image.digest)
    assert _attachments_in(back, image.digest) == {a.digest for a in arts}
    validate_layout(back)
    # A second copy into the same repository lists each attachment once.
    _copy_json(capsys, f"oci:{back}:app", f"{registry.host}/{other}:v2")
    with RegistryClient(registry.host) as client:
        listed = json.loads(client.get_manifest(other, tag)[0])["manifests"]
    assert sorted(m["digest"] for m in listed) == sorted(str(a.digest) for a in arts)


@pytest.mark.registry
def test_through_the_referrers_api(
    attached: tuple[Path, Image, list[Image]], registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, image, arts = attached
    repo = f"attachcli/api-{uuid.uuid4().hex[:8]}"
    with registry_with_referrers_api(registry.host) as (proxy, api):
        report = _copy_json(capsys, f"oci:{layout}:app", f"{proxy.host}/{repo}:v1")
        assert report["attachments"]["written"] == "referrers API"
        assert set(api.referrers[(repo, str(image.digest))]) == {str(a.digest) for a in arts}
        with RegistryClient(registry.host) as client:  # no fallback tag where the API is there
            assert client.head_manifest(repo, fallback_tag(image.digest)) is None
        # API -> tag schema (the same registry without the proxy), and API -> layout.
        report = _copy_json(capsys, f"{proxy.host}/{repo}:v1", f"{registry.host}/{repo}-plain:v1")
        assert report["attachments"]["found"] == "referrers API"
        assert report["attachments"]["written"] == f"tag {fallback_tag(image.digest)}"
        back = tmp_path / "back"
        _copy_json(capsys, f"{proxy.host}/{repo}:v1", f"oci:{back}")
        assert _attachments_in(back, image.digest) == {a.digest for a in arts}
        inspected = main(["inspect", "--json", f"{proxy.host}/{repo}:v1"])
        info = json.loads(capsys.readouterr().out)
    assert inspected == 0 and info["attachments_from"] == "referrers API"
    assert sorted(a["artifact_type"] for a in info["attachments"]) == TYPES


@pytest.mark.registry
def test_a_referrer_of_another_image_is_refused(
    attached: tuple[Path, Image, list[Image]], registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A registry that lists, under the image's tag-schema index, an artifact whose subject is another image."""
    layout, image, _ = attached
    other = small_image(tmp_path / "other", text=b"other\n")
    stray = _attach(tmp_path / "other-layout", other.descriptor, tmp_path / "other-docs")[0]
    repo = f"attachcli/stray-{uuid.uuid4().hex[:8]}"
    _copy_json(capsys, "--no-attachments", f"oci:{layout}:app", f"{registry.host}/{repo}:v1")
    from reprobuild.oci.remote import push

    with RegistryClient(registry.host) as client:
        push(client, repo, stray)
        desc = stray.descriptor.to_json()
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc]}
        client.put_manifest(repo, fallback_tag(image.digest), canonical_json_bytes(index), OCI_INDEX)
    dst = tmp_path / "dst"
    assert main(["--quiet", "copy", f"{registry.host}/{repo}:v1", f"oci:{dst}"]) == 2
    err = capsys.readouterr().err
    assert f"names subject {other.digest}, not {image.digest}" in err and "hint:" in err
    assert not dst.exists()


@pytest.mark.registry
def test_attachments_of_an_index_and_of_its_images_travel(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    amd64 = small_image(tmp_path / "a")
    arm64 = small_image(tmp_path / "b", text=b"arm\n")  # an amd64 config: only the index's descriptors matter here
    index = new_index([(amd64, Platform("linux", "amd64")), (arm64, Platform("linux", "arm64"))])
    layout = tmp_path / "src"
    write_layout(layout, index, tag="multi")
    on_index = _attach(layout, index.descriptor, tmp_path / "docs-index")
    on_child = _attach(layout, amd64.descriptor, tmp_path / "docs-child")
    repo = f"attachcli/index-{uuid.uuid4().hex[:8]}"
    report = _copy_json(capsys, f"oci:{layout}:multi", f"{registry.host}/{repo}:multi")
    assert report["digest"] == str(index.digest)
    assert len(report["attachments"]["copied"]) == 6
    back = tmp_path / "back"
    _copy_json(capsys, f"{registry.host}/{repo}:multi", f"oci:{back}:multi")
    assert isinstance(read_layout(back, tag="multi"), Index)
    assert _attachments_in(back, index.digest) == {a.digest for a in on_index}
    assert _attachments_in(back, amd64.digest) == {a.digest for a in on_child}
    # One platform picked from the index takes that image's attachments only.
    one = tmp_path / "one"
    report = _copy_json(capsys, "--platform", "linux/amd64", f"oci:{layout}:multi", f"oci:{one}")
    assert report["digest"] == str(amd64.digest)
    assert {a["subject"] for a in report["attachments"]["copied"]} == {str(amd64.digest)}


def test_inspect_lists_attachments_of_a_layout(
    attached: tuple[Path, Image, list[Image]], capsys: pytest.CaptureFixture[str]
) -> None:
    layout, image, arts = attached
    assert main(["inspect", "--json", f"oci:{layout}:app"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["attachments_from"] == f"index.json of {layout}"
    by_type = {a["artifact_type"]: a for a in info["attachments"]}
    assert sorted(by_type) == TYPES
    assert by_type[SPDX_JSON]["summary"] == "SPDX-2.3, 2 packages"
    assert by_type[CYCLONEDX_JSON]["summary"] == "CycloneDX 1.6, 3 components"
    assert by_type[IN_TOTO_JSON]["summary"] == f"https://slsa.dev/provenance/v1, subject app:cpu@{image.digest}"
    spdx = next(a for a in arts if a.artifact_type == SPDX_JSON)
    assert by_type[SPDX_JSON]["digest"] == str(spdx.digest)
    assert by_type[SPDX_JSON]["size"] == spdx.layers[0].size
    assert main(["inspect", f"oci:{layout}:app"]) == 0
    text = capsys.readouterr().out
    assert f"attachments: 3 (index.json of {layout})" in text
    line = next(line for line in text.splitlines() if SPDX_JSON in line)
    assert str(spdx.digest) in line and line.endswith("SPDX-2.3, 2 packages")


@pytest.mark.registry
def test_inspect_lists_attachments_found_through_the_tag_schema(
    attached: tuple[Path, Image, list[Image]], registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, image, _ = attached
    repo = f"attachcli/inspect-{uuid.uuid4().hex[:8]}"
    _copy_json(capsys, f"oci:{layout}:app", f"{registry.host}/{repo}:v1")
    assert main(["inspect", f"{registry.host}/{repo}:v1"]) == 0
    text = capsys.readouterr().out
    assert f"attachments: 3 (tag {fallback_tag(image.digest)})" in text
    assert "CycloneDX 1.6, 3 components" in text
    _copy_json(capsys, "--no-attachments", f"oci:{layout}:app", f"{registry.host}/{repo}-bare:v1")
    assert main(["inspect", "--json", f"{registry.host}/{repo}-bare:v1"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["attachments"] == [] and info["attachments_from"] == f"tag {fallback_tag(image.digest)} (absent)"


@pytest.mark.engine
def test_a_copy_to_the_engine_warns_that_attachments_stay_behind(
    attached: tuple[Path, Image, list[Image]], engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, image, _ = attached
    name = f"repro-build-test/attachcli:{uuid.uuid4().hex[:8]}"
    try:
        report = _copy_json(capsys, f"oci:{layout}:app", f"docker-daemon:{name}")
        assert report["digest"] == str(image.config_digest)
        warnings = report["warnings"]
        assert len(warnings) == 1
        assert warnings[0].startswith(f"docker-daemon:{name}: a docker-daemon keeps no attachments, so the image's 3")
    finally:
        subprocess.run([engine.cli, "rmi", name], capture_output=True, check=False)
