"""Image and index values: golden digests, derived fields, mutations, structural checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprobuild.errors import OCIError
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image, append_layers, default_config, new_image, with_config
from reprobuild.oci.index import new_index, select_platform
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.mediatypes import OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.validate import validate_image
from reprobuild.oci.values import Platform
from tests.golden import Golden

EPOCH = 1700000000

#: The golden image's manifest, config and index digests, keyed by the compressor versions (tests/golden.py):
#: they pin the canonical JSON of config + manifest and the gzip layers.
GOLDEN = Path(__file__).with_name("golden-image.json")


def _layers(store: BlobStore) -> tuple[Layer, Layer]:
    a = write_layer([LayerEntry.file("/etc/motd", b"hello\n")], epoch=EPOCH, compressor=Compressor.gzip(), store=store)
    b = write_layer(
        [LayerEntry.file("/app/main.py", b"print(1)\n", mode=0o755)],
        epoch=EPOCH,
        compressor=Compressor.gzip(),
        store=store,
    )
    return a, b


def _golden_image(store: BlobStore) -> Image:
    a, b = _layers(store)
    cfg = default_config(Platform("linux", "amd64"), EPOCH)
    cfg["config"] = {"Entrypoint": ["/app/main.py"], "Env": ["PYTHONHASHSEED=0"]}
    return append_layers(new_image(cfg, [a]), b)


def test_golden_image_digests(tmp_path: Path, golden: Golden) -> None:
    img = _golden_image(BlobStore(tmp_path))
    idx = new_index([(img, None)])
    golden.digests(GOLDEN, {"image": str(img.digest), "config": str(img.config_digest), "index": str(idx.digest)})
    validate_image(img)
    validate_image(idx)


def test_derived_fields(tmp_path: Path) -> None:
    img = _golden_image(BlobStore(tmp_path))
    m = json.loads(img.manifest_bytes)
    assert m["mediaType"] == OCI_MANIFEST and m["config"]["mediaType"] == OCI_CONFIG
    assert [d["mediaType"] for d in m["layers"]] == [OCI_LAYER_GZIP] * 2
    assert img.config["rootfs"]["diff_ids"] == [str(layer.diff_id) for layer in img.layers]
    assert img.config["created"] == "2023-11-14T22:13:20Z"
    assert [h["created"] for h in img.config["history"]] == ["2023-11-14T22:13:20Z"] * 2
    assert img.platform == Platform("linux", "amd64")
    # Canonical JSON: compact, sorted keys.
    assert img.manifest_bytes == json.dumps(m, sort_keys=True, separators=(",", ":")).encode()


def test_mutations_return_new_values(tmp_path: Path) -> None:
    img = _golden_image(BlobStore(tmp_path))
    cfg = img.config
    cfg["config"]["User"] = "1000"
    other = with_config(img, cfg)
    assert other.digest != img.digest and other.layers == img.layers
    assert "User" not in img.config["config"]
    with pytest.raises(AttributeError):
        img.layers = ()  # type: ignore[misc]


def test_inconsistent_images_are_rejected(tmp_path: Path) -> None:
    img = _golden_image(BlobStore(tmp_path))
    with pytest.raises(OCIError, match="layers"):
        Image(img.manifest_bytes, img.config_bytes, img.layers[:1])
    with pytest.raises(OCIError, match="config bytes do not match"):
        Image(img.manifest_bytes, img.config_bytes + b" ", img.layers)
    with pytest.raises(OCIError, match="not valid JSON"):
        Image(b"{", img.config_bytes, img.layers)


def test_index_platform_selection(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    a, _ = _layers(store)
    amd = new_image(default_config(Platform("linux", "amd64"), EPOCH), [a])
    arm = new_image(default_config(Platform("linux", "arm64", "v8"), EPOCH), [a])
    idx = new_index([(amd, None), (arm, None)])
    assert json.loads(idx.manifest_bytes)["mediaType"] == OCI_INDEX
    assert select_platform(idx, Platform.parse("linux/arm64")).digest == arm.digest
    assert select_platform(idx, Platform.parse("linux/amd64")).digest == amd.digest
    with pytest.raises(OCIError, match="no image for platform linux/s390x") as e:
        select_platform(idx, Platform.parse("linux/s390x"))
    assert e.value.hint and "linux/arm64/v8" in e.value.hint


def test_validate_catches_wrong_diff_id_and_corrupt_blob(tmp_path: Path) -> None:
    from reprobuild.oci.digest import Digest

    img = _golden_image(BlobStore(tmp_path))
    a, b = img.layers
    lying = Layer(a.descriptor, Digest.of_bytes(b"not the tar"), a.path)
    bad = new_image(img.config, [lying, b])
    with pytest.raises(OCIError, match="differs from diff_id"):
        validate_image(bad)
    b.path.chmod(0o644)
    b.path.write_bytes(b.path.read_bytes()[:-4])
    with pytest.raises(OCIError, match=f"layer 1 \\({b.digest}\\): blob has"):
        validate_image(img)


def test_validate_without_blobs_leaves_them_to_the_writers_which_check_every_blob(tmp_path: Path) -> None:
    """An image build validates its image without reading the blobs (each was hashed as it was taken from a cache
    or written), because the layout and the archive each hash every blob again while copying it."""
    from reprobuild.errors import DigestMismatchError
    from reprobuild.oci.archive import write_archive
    from reprobuild.oci.layout import write_layout

    img = _golden_image(BlobStore(tmp_path / "staging"))
    _, b = img.layers
    b.path.chmod(0o644)
    b.path.write_bytes(b.path.read_bytes()[:-4])  # corrupted after it was written
    validate_image(img, check_diff_ids=False, check_blobs=False)
    with pytest.raises(OCIError, match="blob has"):
        validate_image(img, check_diff_ids=False)
    with pytest.raises(DigestMismatchError, match=str(b.digest)):
        write_layout(tmp_path / "oci", img)
    assert not (tmp_path / "oci" / "blobs" / "sha256" / b.digest.hex).exists()
    with pytest.raises(OCIError, match=f"layer {b.digest}: its blob"):
        write_archive(tmp_path / "image.tar", img, repo_tags=["x:y"])
    assert not (tmp_path / "image.tar").exists()
