"""The safe layer reader used to inspect base layers: each hostile case fails, naming the layer."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from reprobuild.errors import OCIError
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.layer import Layer, layer_from_tar
from reprobuild.oci.safetar import iter_layer, iter_layer_entries, read_files
from tests.oci.conftest import DebianImage


def _tar(members: list[tuple[str, bytes, str, bytes]]) -> bytes:
    """(name, type, linkname, data) -> an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, link, data in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("../etc/passwd", tarfile.REGTYPE, "", b"x")], "contains `..`"),
        ([("a/../../b", tarfile.REGTYPE, "", b"x")], "contains `..`"),
        ([("/etc/passwd", tarfile.REGTYPE, "", b"x")], "absolute path"),
        ([("usr/lib/x", tarfile.SYMTYPE, "../../../etc/shadow", b"")], "points outside the root"),
        ([("x", tarfile.SYMTYPE, "..", b"")], "points outside the root"),
        ([("dev/sda", tarfile.BLKTYPE, "", b"")], "device node"),
        ([("dev/null", tarfile.CHRTYPE, "", b"")], "device node"),
        ([("fifo", tarfile.FIFOTYPE, "", b"")], "device node or FIFO"),
        ([("h", tarfile.LNKTYPE, "not/seen", b"")], "not earlier in the layer"),
    ],
)
def test_hostile_entries(members: list[tuple[str, bytes, str, bytes]], message: str) -> None:
    with pytest.raises(OCIError, match=message) as e:
        list(iter_layer_entries(io.BytesIO(_tar(members)), artifact="layer sha256:test"))
    assert e.value.message.startswith("layer sha256:test: tar entry")


def test_safe_entries_and_whiteouts() -> None:
    data = _tar(
        [
            ("./", tarfile.DIRTYPE, "", b""),
            ("./usr/bin/python3", tarfile.SYMTYPE, "python3.11", b""),
            ("usr/lib/os-release", tarfile.REGTYPE, "", b"ID=debian\n"),
            ("etc/os-release", tarfile.SYMTYPE, "../usr/lib/os-release", b""),
            ("etc/abs", tarfile.SYMTYPE, "/usr/lib/os-release", b""),
            ("usr/lib/hard", tarfile.LNKTYPE, "usr/lib/os-release", b""),
            ("opt/.wh.old", tarfile.REGTYPE, "", b""),
            ("var/.wh..wh..opq", tarfile.REGTYPE, "", b""),
        ]
    )
    entries = {e.path: e for e in iter_layer_entries(io.BytesIO(data), artifact="t")}
    assert entries["usr/bin/python3"].kind == "symlink" and entries["usr/bin/python3"].target == "python3.11"
    assert entries["etc/os-release"].kind == "symlink"
    assert entries["usr/lib/hard"].kind == "hardlink"
    assert entries["opt/.wh.old"].kind == "whiteout" and entries["var/.wh..wh..opq"].kind == "opaque"


def _layer(
    tmp_path: Path, name: str, members: list[tuple[str, bytes, str, bytes]], compressor: Compressor | None = None
) -> Layer:
    tar = tmp_path / f"{name}.tar"
    tar.write_bytes(_tar(members))
    return layer_from_tar(tar, compressor=compressor or Compressor.gzip(), store=BlobStore(tmp_path / "store"))


def test_read_files_overlays_layers(tmp_path: Path) -> None:
    base = _layer(
        tmp_path,
        "base",
        [
            ("etc/a", tarfile.REGTYPE, "", b"base-a"),
            ("etc/b", tarfile.REGTYPE, "", b"base-b"),
            ("opt/c", tarfile.REGTYPE, "", b"c"),
        ],
    )
    top = _layer(
        tmp_path,
        "top",
        [
            ("etc/a", tarfile.REGTYPE, "", b"top-a"),
            ("etc/.wh.b", tarfile.REGTYPE, "", b""),
            ("opt/.wh..wh..opq", tarfile.REGTYPE, "", b""),
        ],
    )
    got = read_files([base, top], ["/etc/a", "/etc/b", "/opt/c"])
    assert got == {"/etc/a": b"top-a"}


def test_debian_base_inspection(debian_image: DebianImage) -> None:
    layers = debian_image.image.layers
    got = read_files(layers, ["/usr/lib/os-release"])
    assert b"VERSION_CODENAME=bookworm" in got["/usr/lib/os-release"]
    kinds = {e.path: e.kind for e in iter_layer(layers[0])}
    assert kinds["etc/os-release"] == "symlink" and kinds["usr/bin"] == "dir"


@pytest.mark.parametrize("compressor", [Compressor.gzip(), Compressor.zstd()], ids=["gzip", "zstd"])
def test_truncated_layer_is_a_clean_error(tmp_path: Path, compressor: Compressor) -> None:
    layer = _layer(tmp_path, "big", [("f", tarfile.REGTYPE, "", bytes(range(256)) * 4000)], compressor)
    blob = layer.path.read_bytes()
    layer.path.chmod(0o644)
    layer.path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(OCIError, match=f"layer {layer.digest}"):
        list(iter_layer(layer))
