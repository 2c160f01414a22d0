"""SBOM parts without a build: Debian licences, the base inventory, purls, provenance checks."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from pathlib import Path

import pytest
from packageurl import PackageURL

from reprobuild.attest.bom import Bom, ImageFacts, ProjectFacts
from reprobuild.attest.debcopyright import declared_license, spdx_id, synopsis_expression
from reprobuild.attest.inventory import BaseInventory, read_base
from reprobuild.attest.provenance import ProvenanceError, manifest_from_statement, provenance_statement
from reprobuild.attest.purl import purl
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Descriptor

DEP5 = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2020 Someone
License: GPL-2+ or Artistic

Files: lib/*
Copyright: 2021 Else
License: Expat
 Permission is hereby granted...

License: Expat
 The full text.
"""


@pytest.mark.parametrize(
    ("name", "spdx"),
    [
        ("GPL-2", "GPL-2.0-only"),
        ("GPL-2+", "GPL-2.0-or-later"),
        ("LGPL-2.1+", "LGPL-2.1-or-later"),
        ("AGPL-3", "AGPL-3.0-only"),
        ("GFDL-1.3+", "GFDL-1.3-or-later"),
        ("Expat", "MIT"),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("Apache-2.0", "Apache-2.0"),
        ("Zlib", "Zlib"),
        ("public-domain", None),
        ("permissive", None),
        ("GPL", None),
    ],
)
def test_debian_short_names_map_to_spdx_or_to_nothing(name: str, spdx: str | None) -> None:
    assert spdx_id(name) == spdx


def test_dep5_expressions() -> None:
    assert synopsis_expression("GPL-2+ or Artistic") == "GPL-2.0-or-later OR Artistic-1.0"
    assert synopsis_expression("GPL-3+ with GCC-exception-3.1") == "GPL-3.0-or-later WITH GCC-exception-3.1"
    assert synopsis_expression("LGPL-2.1+ and BSD-3-clause") == "LGPL-2.1-or-later AND BSD-3-Clause"
    assert synopsis_expression("MIT or public-domain") is None  # one unknown part: no claim at all


def test_declared_licence_is_the_conjunction_of_the_files_stanzas() -> None:
    assert declared_license(DEP5, origin="demo") == "(GPL-2.0-or-later OR Artistic-1.0) AND MIT"


def test_free_text_copyright_files_assert_nothing() -> None:
    assert declared_license("This is the Debian prepackaged version of demo.\n\nLicense: GPL\n", origin="x") is None
    assert declared_license(DEP5.replace("Format:", "Formatted-by:"), origin="x") is None
    assert (
        declared_license(DEP5.replace("License: Expat\n Permission", "License: public-domain\n P"), origin="x") is None
    )


def _status(*packages: tuple[str, str, str]) -> bytes:
    return "\n".join(
        f"Package: {n}\nStatus: install ok installed\nVersion: {v}\nArchitecture: {a}\nSource: {n}-src (1.0)\n"
        for n, v, a in packages
    ).encode()


def test_base_inventory_overlays_layers_and_follows_doc_symlinks(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    lower = write_layer(
        [
            LayerEntry.file(
                "/var/lib/dpkg/status", _status(("libfoo1", "1:2.0-1+deb12u1", "amd64"), ("gone", "1", "all"))
            ),
            LayerEntry.file("/usr/share/doc/libfoo-common/copyright", DEP5.encode()),
            LayerEntry.symlink("/usr/share/doc/libfoo1", "libfoo-common"),
            LayerEntry.file("/usr/share/doc/gone/copyright", DEP5.encode()),
            LayerEntry.file("/etc/os-release", b'ID=debian\nVERSION_CODENAME=bookworm\nPRETTY_NAME="Debian 12"\n'),
        ],
        epoch=0,
        compressor=Compressor.gzip(6),
        store=store,
        workers=1,
    )
    upper = write_layer(
        [
            LayerEntry.file("/var/lib/dpkg/status", _status(("libfoo1", "1:2.0-1+deb12u1", "amd64"))),
            LayerEntry.file("/usr/share/doc/.wh.gone", b""),
        ],
        epoch=0,
        compressor=Compressor.gzip(6),
        store=store,
        workers=1,
    )
    lock = {
        "packages": [
            {
                "name": "libfoo1",
                "version": "1:2.0-1+deb12u1",
                "architecture": "amd64",
                "sha256": "ab" * 32,
                "filename": "pool/main/libf/libfoo/libfoo1_2.0-1+deb12u1_amd64.deb",
            }
        ]
    }
    inventory = read_base([lower, upper], lock=lock)
    assert inventory.os is not None and (inventory.os.id, inventory.os.version_codename) == ("debian", "bookworm")
    [pkg] = inventory.packages
    assert (pkg.name, pkg.version, pkg.architecture, pkg.source) == (
        "libfoo1",
        "1:2.0-1+deb12u1",
        "amd64",
        "libfoo1-src",
    )
    assert pkg.license == "(GPL-2.0-or-later OR Artistic-1.0) AND MIT"
    assert pkg.sha256 == "ab" * 32 and pkg.filename is not None and pkg.filename.endswith(".deb")


def test_purls_parse_back_with_packageurl_python() -> None:
    text = purl(
        "deb",
        "libstdc++6",
        "1:12.2.0-14+deb12u1",
        namespace="debian",
        qualifiers={"arch": "amd64", "distro": "bookworm"},
    )
    assert (
        text
        == PackageURL(
            type="deb",
            namespace="debian",
            name="libstdc++6",
            version="1:12.2.0-14+deb12u1",
            qualifiers={"arch": "amd64", "distro": "bookworm"},
        ).to_string()
    )
    parsed = PackageURL.from_string(text)
    assert (parsed.name, parsed.version) == ("libstdc++6", "1:12.2.0-14+deb12u1")
    assert purl("pypi", "golden-app", "1.0.0") == "pkg:pypi/golden-app@1.0.0"


SAMPLE_MANIFEST = Path(__file__).parents[1] / "manifest" / "sample-manifest.json"


def _manifest() -> bytes:
    """A whole, valid build manifest (the shared sample) with the values these tests look for."""
    data = json.loads(SAMPLE_MANIFEST.read_text())
    data["target"] = "cpu"
    data["project"].update({"name": "demo", "version": "1.0"})
    data["source"].update(
        {"commit": "a" * 40, "label": {"from": None, "note": None, "url": "https://example.invalid/demo"}}
    )
    data["base"]["manifest_digest"] = "sha256:" + "2" * 64
    data["wheels"][0]["sha256"] = "sha256:" + "3" * 64
    data["outputs"]["manifest_digest"] = "sha256:" + "4" * 64
    return json.dumps(data, sort_keys=True).encode()


def test_provenance_carries_the_manifest_and_names_the_image() -> None:
    data = _manifest()
    statement = provenance_statement(data)
    assert statement["subject"][0]["digest"] == {"sha256": "4" * 64}
    deps = {d["name"]: d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert deps["source"]["digest"] == {"gitCommit": "a" * 40}
    assert deps["six-1.17.0-py2.py3-none-any.whl"]["uri"] == "pkg:pypi/six@1.17.0"
    assert deps["base"]["digest"] == {"sha256": "2" * 64}
    assert manifest_from_statement(statement, "sha256:" + "4" * 64, what="t") == data
    assert provenance_statement(data) == statement  # no clock, no invocation id


def test_provenance_of_another_image_or_with_altered_bytes_is_refused() -> None:
    statement = provenance_statement(_manifest())
    with pytest.raises(ProvenanceError, match="subject"):
        manifest_from_statement(statement, "sha256:" + "5" * 64, what="t")
    product = statement["predicate"]["runDetails"]["byproducts"][0]
    product["content"] = base64.b64encode(b'{"outputs": {}}').decode()
    with pytest.raises(ProvenanceError, match="does not hash"):
        manifest_from_statement(statement, "sha256:" + "4" * 64, what="t")
    product["digest"] = {"sha256": hashlib.sha256(b'{"outputs": {}}').hexdigest()}
    assert manifest_from_statement(statement, "sha256:" + "4" * 64, what="t") == b'{"outputs": {}}'


def test_a_base_with_too_many_copyright_bytes_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reprobuild.attest import inventory
    from reprobuild.errors import ReproBuildError

    monkeypatch.setattr(inventory, "_MAX_COPYRIGHT_TOTAL", 4096)
    entries = [LayerEntry.file(f"/usr/share/doc/p{i}/copyright", b"x" * 1024) for i in range(8)]
    layer = write_layer(entries, epoch=0, compressor=Compressor.gzip(6), store=BlobStore(tmp_path), workers=1)
    with pytest.raises(ReproBuildError, match="exceed") as e:
        read_base([layer])
    assert e.value.hint


class _FakeRegistry:
    """Just the calls a push of an image and its attachments makes, recorded in call order: blobs, manifests
    by digest and tags, referrer manifests (answered with ``OCI-Subject`` when ``referrers_api``), reads of
    the fallback tag, and the referrers endpoint."""

    def __init__(self, *, referrers_api: bool) -> None:
        self.referrers_api = referrers_api
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        # ("blob" | "manifest" | "referrer" | "head" | "referrers", digest or reference), in call order
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def _call(self, kind: str, what: str) -> None:
        with self.lock:
            self.calls.append((kind, what))

    def put_blob(self, repository: str, digest: str, size: int, opener: object, **_: object) -> bool:
        with opener() as f:  # type: ignore[operator]
            data = f.read()
        assert hashlib.sha256(data).hexdigest() == digest.removeprefix("sha256:") and len(data) == size
        self._call("blob", digest)
        self.blobs[digest] = data
        return True

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        self._check_blobs(data)
        self._call("manifest", reference)
        self.manifests[reference] = data
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def put_referrer(self, repository: str, data: bytes, media_type: str, subject: str) -> bool:
        assert json.loads(data)["subject"]["digest"] == subject
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self._check_blobs(data)
        self._call("referrer", digest)
        self.manifests[digest] = data
        return self.referrers_api

    def _check_blobs(self, data: bytes) -> None:
        """A manifest naming a blob the registry lacks is refused, as MANIFEST_BLOB_UNKNOWN."""
        obj = json.loads(data)
        for desc in [obj.get("config") or {}, *(obj.get("layers") or [])]:
            assert not desc or desc["digest"] in self.blobs, f"MANIFEST_BLOB_UNKNOWN {desc['digest']}"

    def get_referrers(self, repository: str, digest: str) -> bytes | None:
        self._call("referrers", digest)
        return b'{"schemaVersion": 2, "manifests": []}' if self.referrers_api else None

    def head_manifest(self, repository: str, reference: str) -> tuple[str, str, int] | None:
        self._call("head", reference)
        data = self.manifests.get(reference)
        return None if data is None else ("sha256:" + hashlib.sha256(data).hexdigest(), "x", len(data))

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        data = self.manifests[reference]
        return data, "application/vnd.oci.image.index.v1+json", "sha256:" + hashlib.sha256(data).hexdigest()


def _attachments(tmp_path: Path, subject: Descriptor | None = None) -> tuple[Descriptor, list[Image]]:
    from reprobuild.attest.referrers import SPDX_JSON, Document, artifact

    subject = subject or Descriptor("application/vnd.oci.image.manifest.v1+json", Digest.of_bytes(b"image"), 5)
    arts = []
    for name in ("a.json", "b.json"):
        doc = Document(name, SPDX_JSON, f"{subject.digest} {name}".encode(), {})
        (tmp_path / f"{subject.digest.hex[:12]}-{name}").write_bytes(doc.data)
        arts.append(
            artifact(subject, doc, tmp_path / f"{subject.digest.hex[:12]}-{name}", created="2023-11-14T22:13:20Z")
        )
    return subject, arts


def test_push_uses_the_referrers_api_when_the_registry_has_one(tmp_path: Path) -> None:
    from reprobuild.attest.referrers import push_referrers

    subject, arts = _attachments(tmp_path)
    fake = _FakeRegistry(referrers_api=True)
    assert push_referrers(fake, "r", subject, arts) == "referrers API"  # type: ignore[arg-type]
    assert not any(ref.startswith("sha256-") for ref in fake.manifests)  # no fallback tag
    assert {str(a.digest) for a in arts} <= set(fake.manifests)
    # The push's own answers (OCI-Subject) say the registry indexed them: no probe of the endpoint.
    assert not any(kind == "referrers" for kind, _ in fake.calls)


def test_attachments_upload_their_shared_blob_once_before_any_manifest(tmp_path: Path) -> None:
    """Every attachment has the same empty config. Uploading it once per attachment, at once, let a
    distribution registry answer one attachment's manifest with MANIFEST_BLOB_UNKNOWN while another
    upload of that blob was being linked into the repository."""
    from reprobuild.attest.referrers import push_referrers

    subject, arts = _attachments(tmp_path)
    fake = _FakeRegistry(referrers_api=False)
    push_referrers(fake, "r", subject, arts)  # type: ignore[arg-type]
    blobs = [d for kind, d in fake.calls if kind == "blob"]
    assert sorted(blobs) == sorted({str(a.config_digest) for a in arts} | {str(a.layers[0].digest) for a in arts})
    first_manifest = next(i for i, (kind, _) in enumerate(fake.calls) if kind != "blob")
    assert all(kind != "blob" for kind, _ in fake.calls[first_manifest:])


def test_fallback_tag_merges_with_what_others_listed(tmp_path: Path) -> None:
    from reprobuild.attest.referrers import fallback_tag, push_referrers

    subject, arts = _attachments(tmp_path)
    fake = _FakeRegistry(referrers_api=False)
    tag = fallback_tag(subject.digest)
    other = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + "e" * 64,
        "size": 9,
        "artifactType": "application/vnd.dev.cosign.simplesigning.v1+json",
    }
    fake.manifests[tag] = json.dumps({"schemaVersion": 2, "manifests": [other]}).encode()
    for _ in range(2):
        assert push_referrers(fake, "r", subject, arts) == f"tag {tag}"  # type: ignore[arg-type]
    listed = json.loads(fake.manifests[tag])["manifests"]
    assert [m["digest"] for m in listed] == [other["digest"], *(str(a.digest) for a in arts)]
    assert all(m.get("artifactType") for m in listed)


@pytest.mark.parametrize("referrers_api", [False, True])
def test_an_image_and_its_attachments_go_up_in_one_push(tmp_path: Path, referrers_api: bool) -> None:
    """`image --push`: every blob of the image and of its attachments once, before any manifest; the
    image's manifest before its tag and before any manifest that refers to it; the fallback index last,
    and only where the registry did not index the attachments itself (no probe of the referrers API)."""
    from reprobuild.attest.referrers import fallback_tag, push_with_referrers
    from tests.oci.helpers import small_image

    image = small_image(tmp_path / "blobs")
    _, arts = _attachments(tmp_path, image.descriptor)
    fake = _FakeRegistry(referrers_api=referrers_api)
    hows = push_with_referrers(fake, "r", image, arts, tags=["v1"])  # type: ignore[arg-type]
    tag = fallback_tag(image.digest)
    assert hows == ["referrers API" if referrers_api else f"tag {tag}"]
    blobs = [d for kind, d in fake.calls if kind == "blob"]
    wanted = {str(image.config_digest), *(str(layer.digest) for layer in image.layers)}
    wanted |= {str(a.config_digest) for a in arts} | {str(a.layers[0].digest) for a in arts}
    assert sorted(blobs) == sorted(wanted)  # each once
    rest = fake.calls[len(blobs) :]
    assert all(kind != "blob" for kind, _ in rest)  # every blob before any manifest
    assert rest[0] == ("manifest", str(image.digest))
    after = set(rest[1:])
    assert ("manifest", "v1") in after and {("referrer", str(a.digest)) for a in arts} <= after
    assert not any(kind == "referrers" for kind, _ in fake.calls)
    if referrers_api:
        assert tag not in fake.manifests
    else:
        assert rest[-1] == ("manifest", tag)
        listed = json.loads(fake.manifests[tag])["manifests"]
        assert [m["digest"] for m in listed] == [str(a.digest) for a in arts]


def test_an_index_push_lists_each_platforms_attachments_under_its_own_image(tmp_path: Path) -> None:
    from reprobuild.attest.referrers import fallback_tag, push_with_referrers
    from reprobuild.errors import OCIError
    from reprobuild.oci.index import new_index
    from tests.oci.helpers import small_image

    images = [small_image(tmp_path / "blobs", text=t) for t in (b"one\n", b"two\n")]
    index = new_index([(image, None) for image in images])
    arts = [a for image in images for a in _attachments(tmp_path, image.descriptor)[1]]
    fake = _FakeRegistry(referrers_api=False)
    stray = _attachments(tmp_path)[1]
    with pytest.raises(OCIError, match="does not refer to"):
        push_with_referrers(fake, "r", index, [*arts, *stray], tags=["v1"])  # type: ignore[arg-type]
    assert fake.calls == []  # refused before anything was sent
    hows = push_with_referrers(fake, "r", index, arts, tags=["v1"])  # type: ignore[arg-type]
    assert hows == [f"tag {fallback_tag(image.digest)}" for image in images]
    for image in images:
        listed = json.loads(fake.manifests[fallback_tag(image.digest)])["manifests"]
        assert [m["digest"] for m in listed] == [str(a.digest) for a in arts if a.subject.digest == image.digest]  # type: ignore[union-attr]
    manifests = [what for kind, what in fake.calls if kind == "manifest"]
    assert manifests[:3] == [*(str(image.digest) for image in images), str(index.digest)]


@pytest.mark.parametrize("referrers_api", [False, True])
def test_a_broken_fallback_index_matters_only_where_it_is_used(tmp_path: Path, referrers_api: bool) -> None:
    """The fallback index is read while the attachments go up; a registry that indexes them itself never
    needs it, so what it holds cannot fail that push; where it is needed, it fails the push unchanged."""
    from reprobuild.attest.referrers import fallback_tag, push_with_referrers
    from reprobuild.errors import OCIError
    from tests.oci.helpers import small_image

    image = small_image(tmp_path / "blobs")
    _, arts = _attachments(tmp_path, image.descriptor)
    fake = _FakeRegistry(referrers_api=referrers_api)
    tag = fallback_tag(image.digest)
    fake.manifests[tag] = b'{"schemaVersion": 2, "manifests": "not a list"}'
    if referrers_api:
        assert push_with_referrers(fake, "r", image, arts) == ["referrers API"]  # type: ignore[arg-type]
    else:
        with pytest.raises(OCIError, match="not a list of descriptors"):
            push_with_referrers(fake, "r", image, arts)  # type: ignore[arg-type]
    assert fake.manifests[tag] == b'{"schemaVersion": 2, "manifests": "not a list"}'


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("python:3.11-slim@sha256:" + "ab" * 32, "python"),
        ("ghcr.io/org/runtime:1", "runtime"),
        ("debian:bookworm", "debian"),
        ("oci-layout:fakebase@sha256:" + "ab" * 32, "fakebase"),
        ("oci:bases/fakebase/", "fakebase"),  # every transport of the location grammar, `oci:` too
        ("oci-archive:/tmp/base.tar:v1", "base.tar"),
        ("docker-daemon:my/base:1", "base"),
        ("docker://registry.example/team/base@sha256:" + "ab" * 32, "base"),
    ],
)
def test_the_base_is_named_by_its_image_not_its_transport(reference: str, name: str) -> None:
    image = ImageFacts("app", "cpu", "sha256:" + "cd" * 32, "linux/amd64", "2023-11-14T22:13:20Z", "0", reference, None)
    bom = Bom(image, ProjectFacts("app", None, None, None), BaseInventory(None, ()), ())
    assert bom.base_name == name
