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
from reprobuild.oci.image import Image, new_image
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


def _seed_debs(project: Path, cache: Path) -> None:
    """Copy the .deb files ``project``'s base lock pins from the user's cache store into ``cache``'s, where
    present (they are re-hashed against the lock on use; seeding only saves downloads). Copies, not links:
    a test that poisons its cache must not poison the user's."""
    from reprobuild.base.debian.lock import read_lock

    shared = Path.home() / ".cache" / "repro-build" / "blobs" / "sha256"
    store = cache / "blobs" / "sha256"
    store.mkdir(parents=True, exist_ok=True)
    for lock in (project / "repro-locks").glob("base-*.json"):
        for deb in read_lock(lock).packages:
            if (shared / deb.sha256).is_file() and not (store / deb.sha256).exists():
                shutil.copyfile(shared / deb.sha256, store / deb.sha256)


@pytest.mark.network
def test_poisoned_debian_base_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An extra layer and a new manifest named by the cached base's record: evicted, rebuilt to the honest digest."""
    from reprobuild.config import load_config
    from reprobuild.image.debianbase import debian_base
    from reprobuild.oci.image import append_layers

    project = tmp_path / "hello-ml"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("build", "dist"))
    cache = tmp_path / "cache"
    _seed_debs(project, cache)
    monkeypatch.setenv("REPRO_BUILD_CACHE", str(cache))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    config = load_config(project)
    target = config.target("cpu")
    (tmp_path / "staging").mkdir()
    honest, _ = debian_base(config, target, tmp_path / "staging" / "a")
    assert len(honest.layers) == 2  # the .deb files' layer and the standard-library byte-code on top
    # Records only: the blobs are in the one store.
    [record] = [p for p in (cache / "bases").iterdir() if not p.name.startswith("stdlib-")]
    [stdlib] = (cache / "bases").glob("stdlib-*.json")
    assert all(p.is_file() for p in (cache / "bases").iterdir())
    store = BlobStore(cache)
    assert all(layer.path == store.path(layer.digest) for layer in honest.layers)

    evil_layer = write_layer(
        [LayerEntry.file("/etc/ld.so.preload", b"/evil.so\n")], epoch=0, compressor=Compressor.gzip(), store=store
    )
    base_only = debian_base_layer(honest)
    poisoned = append_layers(base_only, evil_layer, history=[{"created_by": "nothing to see"}])
    store.put_bytes(poisoned.config_bytes)
    store.put_bytes(poisoned.manifest_bytes)
    sealed = json.loads(record.read_text())

    def poison(hmac: str) -> None:
        manifest = {
            "digest": str(poisoned.digest),
            "media_type": poisoned.media_type,
            "size": len(poisoned.manifest_bytes),
        }
        record.write_text(json.dumps({"hmac": hmac, "payload": {**sealed["payload"], "manifest": manifest}}))

    poison(sealed["hmac"])
    with caplog.at_level(logging.WARNING):
        again, _ = debian_base(config, target, tmp_path / "staging" / "b")
    assert again.digest == honest.digest and len(again.layers) == 2
    assert "not trusted" in caplog.text

    # The attacker rewrites the seal too (without the key): still refused.
    poison("0" * 64)
    third, _ = debian_base(config, target, tmp_path / "staging" / "c")
    assert third.digest == honest.digest

    # The cached standard-library byte-code: a rewritten blob, then a rewritten record, are compiled again.
    caplog.clear()
    blob = store.path(honest.layers[1].digest)
    blob.unlink()
    blob.write_bytes(b"not the layer")
    with caplog.at_level(logging.WARNING):
        fourth, _ = debian_base(config, target, tmp_path / "staging" / "d")
    assert fourth.digest == honest.digest and "standard-library byte-code" in caplog.text
    sealed = json.loads(stdlib.read_text())
    sealed["payload"]["files"] += 1
    stdlib.write_text(json.dumps(sealed))
    fifth, _ = debian_base(config, target, tmp_path / "staging" / "e")
    assert fifth.digest == honest.digest
    assert json.loads(stdlib.read_text())["payload"]["files"] == sealed["payload"]["files"] - 1


def debian_base_layer(image: Image) -> Image:
    """``image`` (the Debian base with its byte-code layer) without the byte-code: the cached base alone."""
    config = json.loads(image.config_bytes)
    config["history"] = config["history"][:1]
    return new_image(config, [image.layers[0]])


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


# ------------------------------------------------------------------ the one blob store: .debs and wheels


def _served(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / "mirror" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


DEB = b"!<arch>\n" + bytes(range(256)) * 64
DEB_SHA = hashlib.sha256(DEB).hexdigest()


@pytest.mark.parametrize("poison", ["same size", "truncated", "symlink", "directory"])
def test_a_poisoned_deb_blob_is_evicted_and_fetched_again(tmp_path: Path, poison: str) -> None:
    from reprobuild.base.debian.fetch import DebCache
    from reprobuild.errors import ReproBuildError

    cache = DebCache(tmp_path / "cache")
    url = _served(tmp_path, "hello_1.0_amd64.deb", DEB)
    blob = cache.get(DEB_SHA, len(DEB), url, "hello 1.0")
    victim = tmp_path / "victim"
    victim.write_bytes(bytes(len(DEB)))
    blob.unlink()
    if poison == "same size":
        blob.write_bytes(bytes(len(DEB)))
    elif poison == "truncated":
        blob.write_bytes(DEB[:-1])
    elif poison == "symlink":
        blob.symlink_to(victim)  # a link out of the cache: read, refused, the link removed, its target untouched
    else:
        blob.mkdir()
    with pytest.raises(ReproBuildError, match=r"hello 1\.0"):
        cache.get(DEB_SHA, len(DEB), "http://127.0.0.1:1/x.deb", "hello 1.0", offline=True)
    if poison != "directory":
        assert not blob.exists() and not blob.is_symlink()
        assert victim.read_bytes() == bytes(len(DEB))
        assert cache.get(DEB_SHA, len(DEB), url, "hello 1.0").read_bytes() == DEB
    else:  # not a file the store wrote, so not one it removes; the download then fails rather than use it
        with pytest.raises(ReproBuildError):
            cache.get(DEB_SHA, len(DEB), url, "hello 1.0")


def test_a_poisoned_wheel_blob_is_never_staged(tmp_path: Path) -> None:
    from reprobuild.image.wheels import WheelCache, WheelPin
    from reprobuild.oci.digest import Digest

    data = b"PK\x03\x04 pretend wheel" * 100
    url = _served(tmp_path, "demo-1.0-py3-none-any.whl", data)
    pin = WheelPin("demo", "1.0", "demo-1.0-py3-none-any.whl", hashlib.sha256(data).hexdigest(), len(data))
    cache = WheelCache(tmp_path / "cache", staging=tmp_path / "stage")
    cache.fetch(pin, url)
    blob = cache.store.path(Digest(pin.sha256))
    blob.unlink()
    blob.write_bytes(b"PK\x03\x04 evil wheel!!" * 100)  # same size
    assert cache.get(pin) is None
    assert not (tmp_path / "stage" / pin.filename).exists() and not blob.exists()
    assert cache.fetch(pin, url).read_bytes() == data


def test_a_blob_is_read_only_under_the_digest_its_pin_names(tmp_path: Path) -> None:
    """A wheel pin that names a .deb's digest gets nothing from the .deb: the size it pins differs, and
    the bytes would still have to be the ones it pins."""
    from reprobuild.base.debian.fetch import DebCache
    from reprobuild.image.wheels import WheelCache, WheelPin

    root = tmp_path / "cache"
    DebCache(root).get(DEB_SHA, len(DEB), _served(tmp_path, "h.deb", DEB), "hello 1.0")
    wheels = WheelCache(root, staging=tmp_path / "stage")
    assert wheels.get(WheelPin("evil", "1.0", "evil-1.0-py3-none-any.whl", DEB_SHA, len(DEB) + 1)) is None
    assert DebCache(root).peek(DEB_SHA, len(DEB)) is not None  # a right blob is not evicted for a wrong pin


def test_directories_of_the_old_layout_are_never_read(tmp_path: Path) -> None:
    """``debs/<sha256>.deb`` and ``wheels/sha256/<hex>/<file>`` of older versions are ignored, poisoned or not."""
    from reprobuild.base.debian.fetch import DebCache
    from reprobuild.errors import BaseImageError

    root = tmp_path / "cache"
    (root / "debs").mkdir(parents=True)
    (root / "debs" / f"{DEB_SHA}.deb").write_bytes(b"evil")
    (root / "debs" / f"{DEB_SHA}.deb").chmod(0o444)
    with pytest.raises(BaseImageError, match="not in the cache"):
        DebCache(root).get(DEB_SHA, len(DEB), "http://127.0.0.1:1/x.deb", "hello 1.0", offline=True)
    got = DebCache(root).get(DEB_SHA, len(DEB), _served(tmp_path, "h.deb", DEB), "hello 1.0")
    assert got == root / "blobs" / "sha256" / DEB_SHA and got.read_bytes() == DEB
    assert (root / "debs" / f"{DEB_SHA}.deb").read_bytes() == b"evil"
