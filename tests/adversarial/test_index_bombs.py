"""Unbounded index walks: deep nesting and exponential fan-out fail fast with one error (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reprobuild.errors import OCIError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest
from reprobuild.oci.index import MAX_INDEX_DEPTH
from reprobuild.oci.layout import read_layout, write_layout
from reprobuild.oci.mediatypes import OCI_INDEX
from tests.oci.helpers import small_image

CLI = (sys.executable, "-m", "reprobuild")


def _index(children: list[tuple[Digest, int, str]]) -> bytes:
    return canonical_json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": mt, "digest": str(d), "size": n} for d, n, mt in children],
        }
    )


def _layout_with_root(layout: Path, leaf: tuple[Digest, int, str], levels: int, width: int) -> None:
    """A chain of ``levels`` indexes above ``leaf``, each listing the one below ``width`` times."""
    store = BlobStore(layout)
    below = leaf
    for _ in range(levels):
        data = _index([below] * width)
        below = (store.put_bytes(data), len(data), OCI_INDEX)
    d, n, mt = below
    (layout / "index.json").write_bytes(_index([(d, n, mt)]))


def _image_layout(tmp_path: Path) -> tuple[Path, tuple[Digest, int, str]]:
    img = small_image(tmp_path / "staging")
    layout = tmp_path / "layout"
    write_layout(layout, img)
    return layout, (img.digest, len(img.manifest_bytes), img.media_type)


def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path) -> None:
    layout, leaf = _image_layout(tmp_path)
    _layout_with_root(layout, leaf, levels=3000, width=1)
    with pytest.raises(OCIError, match="nested"):
        read_layout(layout)
    out = subprocess.run([*CLI, "inspect", f"oci-layout:{layout}"], capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "nested" in out.stderr


def test_exponential_fan_out_is_refused_quickly(tmp_path: Path) -> None:
    layout, leaf = _image_layout(tmp_path)
    _layout_with_root(layout, leaf, levels=5, width=40)
    size = sum(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())
    assert size < 100_000  # a few KB on disk ...
    start = time.monotonic()
    out = subprocess.run(
        [*CLI, "inspect", f"oci-layout:{layout}"], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "more than" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - start < 60  # ... that used to expand to 100 M manifests


def test_real_nesting_still_reads(tmp_path: Path) -> None:
    layout, leaf = _image_layout(tmp_path)
    _layout_with_root(layout, leaf, levels=MAX_INDEX_DEPTH - 1, width=2)
    assert read_layout(layout).digest == Digest.of_bytes(
        (
            layout / "blobs" / "sha256" / json.loads((layout / "index.json").read_text())["manifests"][0]["digest"][7:]
        ).read_bytes()
    )


class _BombRegistry:
    """Serves a chain of indexes ``width`` wide (all entries the same child), ``levels`` deep."""

    host = "bomb.test"

    def __init__(self, levels: int, width: int) -> None:
        self.blobs: dict[str, bytes] = {}
        leaf = canonical_json_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        below = (Digest.of_bytes(leaf), len(leaf), OCI_INDEX)
        self.blobs[str(below[0])] = leaf
        for _ in range(levels):
            data = _index([below] * width)
            below = (Digest.of_bytes(data), len(data), OCI_INDEX)
            self.blobs[str(below[0])] = data
        self.root = str(below[0])
        self.requests = 0

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        self.requests += 1
        ref = self.root if reference == "latest" else reference
        return self.blobs[ref], OCI_INDEX, ref


@pytest.mark.parametrize(("levels", "width", "message"), [(3000, 1, "nested"), (5, 40, "more than")])
def test_registry_index_bombs_are_refused(tmp_path: Path, levels: int, width: int, message: str) -> None:
    from reprobuild.oci.remote import pull

    registry = _BombRegistry(levels, width)
    with pytest.raises(OCIError, match=message):
        pull(registry, "x", "latest", BlobStore(tmp_path))  # type: ignore[arg-type]
    assert registry.requests <= 4097
