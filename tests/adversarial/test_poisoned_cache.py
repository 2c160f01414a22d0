"""Caches verify, never trust: a poisoned entry is evicted and rebuilt with the right digest.

The attacker here can rewrite anything under the cache directory (a cache restored from CI, a shared
volume), including each entry's self-hash; the checks must therefore come from outside the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from repro_build.fsutil import canonical_json_bytes
from repro_build.image.buildcache import LayerCache, layer_key
from repro_build.oci.blobstore import BlobStore
from repro_build.oci.compress import Compressor
from repro_build.oci.layer import Layer, write_layer
from repro_build.oci.tarwriter import LayerEntry
from tests.adversarial.conftest import run_cli
from tests.foundation.helpers import git_commit
from tests.image.conftest import GOLDEN_PROJECT
from tests.image.fakebase import fake_base


def forge_entry(cache_root: Path, key: str, payload_of: Layer) -> None:
    """Point the layer-cache entry ``key`` at ``payload_of``'s blob, with a self-hash that checks out."""
    store = BlobStore(cache_root)
    with payload_of.path.open("rb") as f:
        store.copy_from(f, expected=payload_of.digest, size=payload_of.size, what="forged")
    payload: dict[str, Any] = {
        "diff_id": str(payload_of.diff_id),
        "digest": str(payload_of.digest),
        "media_type": payload_of.media_type,
        "size": payload_of.size,
    }
    (cache_root / "layers").mkdir(parents=True, exist_ok=True)
    sealed = {"payload": payload, "sha256": hashlib.sha256(canonical_json_bytes(payload)).hexdigest()}
    (cache_root / "layers" / f"{key}.json").write_text(json.dumps(sealed))


def test_forged_layer_cache_entry_is_evicted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gzip = Compressor.gzip()
    entries = [LayerEntry.file("/site-packages/numpy/__init__.py", b"the real thing\n" * 1000)]
    honest = write_layer(entries, epoch=0, compressor=gzip, store=BlobStore(tmp_path / "s"))
    evil = write_layer([LayerEntry.file("/x", b"evil\n")], epoch=0, compressor=gzip, store=BlobStore(tmp_path / "e"))
    cache = LayerCache(tmp_path / "cache")
    key = layer_key(entries, epoch=0, compressor=gzip.describe())
    cache.put(key, honest)
    forge_entry(tmp_path / "cache", key, evil)
    with caplog.at_level(logging.WARNING):
        got = cache.get(key, entries=entries, epoch=0, media_type=honest.media_type)
    assert got is None
    assert "not what its inputs give" in caplog.text
    assert not (cache.index / f"{key}.json").exists()
    cache.put(key, honest)
    good = cache.get(key, entries=entries, epoch=0, media_type=honest.media_type)
    assert good is not None and good.digest == honest.digest


def test_blob_swapped_under_a_consistent_entry_is_evicted(tmp_path: Path) -> None:
    """Entry records the honest diff_id, but the blob under its digest name was replaced by other bytes."""
    gzip = Compressor.gzip()
    entries = [LayerEntry.file("/a", b"honest\n")]
    honest = write_layer(entries, epoch=0, compressor=gzip, store=BlobStore(tmp_path / "s"))
    cache = LayerCache(tmp_path / "cache")
    key = layer_key(entries, epoch=0, compressor=gzip.describe())
    cache.put(key, honest)
    evil = write_layer([LayerEntry.file("/a", b"evil!!\n")], epoch=0, compressor=gzip, store=BlobStore(tmp_path / "e"))
    blob = cache.store.path(honest.digest)
    blob.chmod(0o644)
    blob.write_bytes(evil.path.read_bytes())
    assert cache.get(key, entries=entries, epoch=0, media_type=honest.media_type) is None
    assert not blob.exists()


def test_uncompressed_entry_for_a_gzip_build_is_evicted(tmp_path: Path) -> None:
    """Same content, another encoding (a raw tar in place of gzip): not what this build would write."""
    entries = [LayerEntry.file("/a", b"honest\n")]
    raw = write_layer(entries, epoch=0, compressor=Compressor.none(), store=BlobStore(tmp_path / "s"))
    gzip = Compressor.gzip()
    cache = LayerCache(tmp_path / "cache")
    key = layer_key(entries, epoch=0, compressor=gzip.describe())
    forge_entry(tmp_path / "cache", key, raw)
    assert cache.get(key, entries=entries, epoch=0, media_type="application/vnd.oci.image.layer.v1.tar+gzip") is None


@pytest.mark.network
def test_image_rebuilds_a_poisoned_layer_cache_with_the_right_digest(tmp_path: Path) -> None:
    """End to end: every layer-cache entry of a build is forged to a tiny layer; the rebuild is unchanged."""
    project = tmp_path / "golden"
    shutil.copytree(GOLDEN_PROJECT, project)
    fake_base(project / "fakebase")
    (project / ".gitignore").write_text("build/\ndist/\n")
    git_commit(project)
    env = {"REPRO_BUILD_CACHE": str(tmp_path / "cache")}
    first = run_cli("image", "--project", str(project), "-q", env=env)
    assert first.returncode == 0, first.stderr
    before = json.loads((project / "build" / "cpu" / "manifest.json").read_text())["outputs"]
    evil = write_layer(
        [LayerEntry.file("/evil", b"x" * 10)], epoch=0, compressor=Compressor.gzip(), store=BlobStore(tmp_path / "e")
    )
    keys = [p.stem for p in (tmp_path / "cache" / "layers").glob("*.json")]
    assert keys, "the first build should have filled the layer cache"
    for key in keys:
        forge_entry(tmp_path / "cache", key, evil)
    second = run_cli("image", "--project", str(project), env=env)
    assert second.returncode == 0, second.stderr
    after = json.loads((project / "build" / "cpu" / "manifest.json").read_text())["outputs"]
    assert after["manifest_digest"] == before["manifest_digest"]
    assert all(layer["digest"] != str(evil.digest) for layer in after["layers"])
    assert second.stderr.count("not what its inputs give") == len(keys)
