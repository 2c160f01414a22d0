"""The build caches are never trusted: a corrupt entry is recomputed, a forged base is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprobuild.errors import BaseImageError
from reprobuild.image.buildcache import LayerCache, cached_base_info, layer_key
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image, default_config, new_image
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.layout import read_layout
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Platform
from tests.image.fakebase import fake_base


def _layer(tmp_path: Path, data: bytes) -> tuple[list[LayerEntry], Layer]:
    entries = [LayerEntry.file("/app/x.txt", data)]
    return entries, write_layer(entries, epoch=0, compressor=Compressor.gzip(), store=BlobStore(tmp_path / "s"))


def test_layer_cache_round_trip_and_key(tmp_path: Path) -> None:
    entries, layer = _layer(tmp_path, b"hello\n")
    cache = LayerCache(tmp_path / "cache")
    key = layer_key(entries, epoch=0, compressor=Compressor.gzip().describe())
    assert cache.get(key, entries=entries, epoch=0, media_type=layer.media_type) is None
    cache.put(key, layer)
    got = cache.get(key, entries=entries, epoch=0, media_type=layer.media_type)
    assert got is not None and (got.digest, got.diff_id, got.size) == (layer.digest, layer.diff_id, layer.size)
    # Anything that decides the bytes changes the key.
    other, _ = _layer(tmp_path / "o", b"hello!\n")
    assert layer_key(other, epoch=0, compressor=Compressor.gzip().describe()) != key
    assert layer_key(entries, epoch=1, compressor=Compressor.gzip().describe()) != key
    assert layer_key(entries, epoch=0, compressor=Compressor.gzip(level=9).describe()) != key


def test_corrupt_cached_blob_or_index_is_not_used(tmp_path: Path) -> None:
    entries, layer = _layer(tmp_path, b"hello\n")
    cache = LayerCache(tmp_path / "cache")
    key = layer_key(entries, epoch=0, compressor=Compressor.gzip().describe())
    cache.put(key, layer)
    blob = cache.store.path(layer.digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    assert cache.get(key, entries=entries, epoch=0, media_type=layer.media_type) is None
    assert not blob.exists()  # the corrupt blob is removed, so the next put stores a good copy
    cache.put(key, layer)
    assert cache.get(key, entries=entries, epoch=0, media_type=layer.media_type) is not None
    index = cache.index / f"{key}.json"
    record = json.loads(index.read_text())
    record["payload"]["digest"] = "sha256:" + "0" * 64
    index.write_text(json.dumps(record))
    assert cache.get(key, entries=entries, epoch=0, media_type=layer.media_type) is None


def test_base_info_is_cached_and_a_forged_diff_id_is_refused(tmp_path: Path) -> None:
    fake_base(tmp_path / "base")
    image = read_layout(tmp_path / "base")
    assert isinstance(image, Image)
    info = cached_base_info(image, name="fake", root=tmp_path / "cache")
    assert info.python_version == "3.11.2" and info.glibc == (2, 36)
    assert cached_base_info(image, name="fake", root=tmp_path / "cache") == info
    # A config that lies about the diff_id: refused when the base is inspected.
    forged_layer = Layer(image.layers[0].descriptor, Digest("0" * 64), image.layers[0].path)
    forged = new_image(default_config(Platform("linux", "amd64"), 0), [forged_layer])
    with pytest.raises(BaseImageError, match="uncompresses to"):
        cached_base_info(forged, name="forged", root=tmp_path / "cache")
