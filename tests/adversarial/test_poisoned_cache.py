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

from reprobuild.fsutil import canonical_json_bytes
from reprobuild.image.buildcache import LayerCache, layer_key
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.tarwriter import LayerEntry
from tests.cli import run_cli
from tests.foundation.helpers import git_commit
from tests.image.conftest import EXAMPLE, GOLDEN_PROJECT
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


# ------------------------------------------------------------------ the Debian base cache


@pytest.mark.network
def test_poisoned_debian_base_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An extra layer and a new manifest in the cached base layout: evicted, rebuilt to the honest digest."""
    from reprobuild.config import load_config
    from reprobuild.image.debianbase import debian_base
    from reprobuild.oci.image import Image, append_layers
    from reprobuild.oci.layout import read_layout, write_layout

    project = tmp_path / "hello-ml"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("build", "dist"))
    cache = tmp_path / "cache"
    shared_debs = Path.home() / ".cache" / "repro-build" / "debs"
    if shared_debs.is_dir():  # the .deb files are re-hashed against the lock on use; copying saves downloads
        shutil.copytree(shared_debs, cache / "debs")
    monkeypatch.setenv("REPRO_BUILD_CACHE", str(cache))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    config = load_config(project)
    target = config.target("cpu")
    (tmp_path / "staging").mkdir()
    honest, _ = debian_base(config, target, tmp_path / "staging" / "a")
    assert len(honest.layers) == 2  # the .deb files' layer and the standard-library byte-code on top
    [cached] = [p for p in (cache / "bases").iterdir() if (p / "oci").is_dir()]
    [stdlib] = (cache / "bases").glob("stdlib-*")

    evil_layer = write_layer(
        [LayerEntry.file("/etc/ld.so.preload", b"/evil.so\n")],
        epoch=0,
        compressor=Compressor.gzip(),
        store=BlobStore(tmp_path / "evil"),
    )
    shutil.copytree(cached / "oci", tmp_path / "honest")
    original = read_layout(tmp_path / "honest")
    assert isinstance(original, Image)
    poisoned = append_layers(original, evil_layer, history=[{"created_by": "nothing to see"}])

    def poison() -> None:
        shutil.rmtree(cached / "oci")
        write_layout(cached / "oci", poisoned)

    poison()
    with caplog.at_level(logging.WARNING):
        again, _ = debian_base(config, target, tmp_path / "staging" / "b")
    assert again.digest == honest.digest and len(again.layers) == 2
    assert "not trusted" in caplog.text

    # The attacker rewrites the seal too (without the key): still refused.
    poison()
    (cached / "sealed.json").write_text(json.dumps({"hmac": "0" * 64, "manifest_digest": str(poisoned.digest)}))
    third, _ = debian_base(config, target, tmp_path / "staging" / "c")
    assert third.digest == honest.digest

    # The cached standard-library byte-code: a rewritten blob, then a rewritten seal, are compiled again.
    caplog.clear()
    (stdlib / "layer").write_bytes(b"not the layer")
    with caplog.at_level(logging.WARNING):
        fourth, _ = debian_base(config, target, tmp_path / "staging" / "d")
    assert fourth.digest == honest.digest and "standard-library byte-code" in caplog.text
    sealed = json.loads((stdlib / "sealed.json").read_text())
    sealed["payload"]["files"] += 1
    (stdlib / "sealed.json").write_text(json.dumps(sealed))
    fifth, _ = debian_base(config, target, tmp_path / "staging" / "e")
    assert fifth.digest == honest.digest
    assert json.loads((stdlib / "sealed.json").read_text())["payload"]["files"] == sealed["payload"]["files"] - 1


# ------------------------------------------------------------------ outputs never share inodes with a cache


def test_layout_blobs_are_copies_not_links(tmp_path: Path) -> None:
    from reprobuild.oci.layout import write_layout
    from tests.oci.helpers import small_image

    img = small_image(tmp_path / "cache")
    write_layout(tmp_path / "out", img)
    for layer in img.layers:
        out = tmp_path / "out" / "blobs" / "sha256" / layer.digest.hex
        assert out.stat().st_ino != layer.path.stat().st_ino and out.stat().st_nlink == 1
        before = layer.path.read_bytes()
        out.chmod(0o644)
        with out.open("r+b") as f:  # edit the output in place, as a careless tool would
            f.write(b"\0\0\0\0")
        assert layer.path.read_bytes() == before


@pytest.mark.network
def test_an_output_edited_in_place_does_not_wedge_later_builds(tmp_path: Path) -> None:
    project = tmp_path / "golden"
    shutil.copytree(GOLDEN_PROJECT, project)
    fake_base(project / "fakebase")
    (project / ".gitignore").write_text("build/\ndist/\n")
    git_commit(project)
    env = {"REPRO_BUILD_CACHE": str(tmp_path / "cache")}
    first = run_cli("image", "--project", str(project), "-q", env=env)
    assert first.returncode == 0, first.stderr
    digest = json.loads((project / "build" / "cpu" / "manifest.json").read_text())["outputs"]["manifest_digest"]
    cached = {p.stat().st_ino for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    blobs = list((project / "build" / "cpu" / "oci" / "blobs" / "sha256").iterdir())
    assert not {p.stat().st_ino for p in blobs} & cached
    for blob in blobs:  # corrupt every output blob in place
        blob.chmod(0o644)
        with blob.open("r+b") as f:
            f.write(b"\xff")
    second = run_cli("image", "--project", str(project), "-q", env=env)
    assert second.returncode == 0, second.stderr
    again = json.loads((project / "build" / "cpu" / "manifest.json").read_text())["outputs"]["manifest_digest"]
    assert again == digest
