"""OCI layout read/write, validation, hostile layouts, and the skopeo/umoci cross-checks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reprobuild.errors import DigestMismatchError, OCIError, ReproBuildError
from reprobuild.oci.digest import Digest
from reprobuild.oci.layout import read_layout, write_layout
from reprobuild.oci.validate import validate_layout
from tests.oci.conftest import DebianImage
from tests.oci.helpers import small_image
from tests.testbed import unavailable


def test_round_trip_keeps_digests(tmp_path: Path) -> None:
    img = small_image(tmp_path / "staging")
    layout = tmp_path / "layout"
    desc = write_layout(layout, img, tag="v1")
    assert desc.digest == img.digest
    back = read_layout(layout, tag="v1")
    assert back.digest == img.digest and back.manifest_bytes == img.manifest_bytes
    assert read_layout(layout, digest=img.digest).digest == img.digest
    assert read_layout(layout).digest == img.digest
    validate_layout(layout)
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    # A second image under another tag; the first stays; re-tagging replaces.
    other = small_image(tmp_path / "staging2", b"other\n")
    write_layout(layout, other, tag="v2")
    write_layout(layout, other, tag="v1")
    entries = json.loads((layout / "index.json").read_text())["manifests"]
    assert sorted(e["annotations"]["org.opencontainers.image.ref.name"] for e in entries) == ["v1", "v2"]
    assert read_layout(layout, tag="v1").digest == other.digest
    with pytest.raises(OCIError, match="2 images; name one"):
        read_layout(layout)
    with pytest.raises(OCIError, match="no image tagged 'v3'") as e:
        read_layout(layout, tag="v3")
    assert e.value.hint and "v1" in e.value.hint


def _layout(tmp_path: Path) -> tuple[Path, list[Digest]]:
    img = small_image(tmp_path / "staging")
    layout = tmp_path / "layout"
    write_layout(layout, img, tag="v1")
    return layout, [layer.digest for layer in img.layers] + [img.config_digest, img.digest]


def test_layer_blob_with_wrong_bytes(tmp_path: Path) -> None:
    layout, digests = _layout(tmp_path)
    blob = layout / "blobs" / "sha256" / digests[0].hex
    data = bytearray(blob.read_bytes())
    data[20] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(OCIError, match=digests[0].hex):
        validate_layout(layout)
    # Copying it anywhere fails and leaves no entry under the digest's name.
    img = read_layout(layout, tag="v1")
    out = tmp_path / "copy"
    with pytest.raises(DigestMismatchError, match=digests[0].hex):
        write_layout(out, img, tag="v1")
    assert not (out / "blobs" / "sha256" / digests[0].hex).exists()
    assert not (out / "index.json").exists()
    assert not [p for p in (out / "blobs" / "sha256").iterdir() if p.name.startswith(".tmp")]


def test_truncated_layer_blob(tmp_path: Path) -> None:
    layout, digests = _layout(tmp_path)
    blob = layout / "blobs" / "sha256" / digests[1].hex
    blob.write_bytes(blob.read_bytes()[:-10])
    with pytest.raises(OCIError, match=f"layer blob {digests[1]} has .* bytes"):
        read_layout(layout, tag="v1")


def test_manifest_names_missing_blob(tmp_path: Path) -> None:
    layout, digests = _layout(tmp_path)
    (layout / "blobs" / "sha256" / digests[0].hex).unlink()
    with pytest.raises(OCIError, match=f"{digests[0]} is missing"):
        read_layout(layout, tag="v1")
    (layout / "blobs" / "sha256" / digests[2].hex).unlink()
    with pytest.raises(OCIError, match=f"config {digests[2]}.*missing"):
        read_layout(layout, tag="v1")


def test_manifest_blob_with_wrong_bytes(tmp_path: Path) -> None:
    layout, digests = _layout(tmp_path)
    blob = layout / "blobs" / "sha256" / digests[3].hex
    blob.write_bytes(blob.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":2 '))
    with pytest.raises(DigestMismatchError, match=r"not the .* its name claims"):
        read_layout(layout, tag="v1")


def test_not_a_layout(tmp_path: Path) -> None:
    with pytest.raises(ReproBuildError, match="no `oci-layout` file"):
        read_layout(tmp_path)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(name, f"`apt-get install -y {name}`")
    return path


def test_skopeo_and_umoci_accept_our_layout(debian_image: DebianImage, tmp_path: Path) -> None:
    skopeo = _tool("skopeo")
    out = subprocess.run(
        [skopeo, "inspect", f"oci:{debian_image.layout}:bookworm"], capture_output=True, text=True, check=True
    )
    info = json.loads(out.stdout)
    assert info["Digest"] == str(debian_image.image.digest)
    assert info["Layers"] == [str(layer.digest) for layer in debian_image.image.layers]
    umoci = _tool("umoci")
    stat = subprocess.run(
        [umoci, "stat", "--image", f"{debian_image.layout}:bookworm", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(json.loads(stat.stdout)["history"]) == len(debian_image.image.layers)
    bundle = tmp_path / "bundle"
    # umoci unpack verifies every blob digest and diff_id while unpacking.
    subprocess.run(
        [umoci, "unpack", "--rootless", "--image", f"{debian_image.layout}:bookworm", str(bundle)],
        capture_output=True,
        check=True,
    )
    assert b"bookworm" in (bundle / "rootfs" / "usr" / "lib" / "os-release").read_bytes()
    validate_layout(debian_image.layout)


def test_debian_layer_is_reproducible_and_worker_independent(debian_image: DebianImage, tmp_path: Path) -> None:
    """Rebuild the 135 MB Debian layer single-threaded into another dir: same digests as the fixture's."""
    from reprobuild.oci.blobstore import BlobStore
    from reprobuild.oci.compress import Compressor
    from reprobuild.oci.layer import write_layer
    from reprobuild.oci.tarwriter import entries_from_tar
    from tests.oci.rootfs import ROOTFS_EPOCH, debian_rootfs

    layer = write_layer(
        entries_from_tar(debian_rootfs(variant="essential")),
        epoch=ROOTFS_EPOCH,
        compressor=Compressor.gzip(),
        store=BlobStore(tmp_path / "other-place"),
        workers=1,
        preserve_metadata=True,
    )
    original = debian_image.image.layers[0]
    assert (layer.digest, layer.diff_id, layer.size) == (original.digest, original.diff_id, original.size)


def test_docker_v2_manifests_are_read_and_kept(tmp_path: Path) -> None:
    """A Docker schema 2 image (Docker media types) is carried byte for byte and validates."""
    from reprobuild.fsutil import canonical_json_bytes
    from reprobuild.oci.image import Image
    from reprobuild.oci.layer import Layer
    from reprobuild.oci.mediatypes import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST
    from reprobuild.oci.values import Descriptor

    oci = small_image(tmp_path / "staging")
    layers = tuple(
        Layer(Descriptor(DOCKER_LAYER_GZIP, layer.digest, layer.size), layer.diff_id, layer.path)
        for layer in oci.layers
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": str(oci.config_digest), "size": len(oci.config_bytes)},
        "layers": [layer.descriptor.to_json() for layer in layers],
    }
    img = Image(canonical_json_bytes(manifest), oci.config_bytes, layers)
    assert img.is_docker
    write_layout(tmp_path / "layout", img, tag="docker")
    back = read_layout(tmp_path / "layout", tag="docker")
    assert back.digest == img.digest and back.media_type == DOCKER_MANIFEST
    validate_layout(tmp_path / "layout")
