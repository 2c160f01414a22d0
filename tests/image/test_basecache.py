"""The Debian base and standard-library byte-code caches: sealed records over the one blob store.

The attacker can rewrite anything under the cache directory (a cache restored from CI, a shared volume);
what is not theirs is the cache key (outside the cache) and the key of an entry, which the reader computes
from its own inputs. A record is read as data, its seal checked, and every blob it names re-hashed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reprobuild.cachekey import seal
from reprobuild.errors import ReproBuildError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.image.basecache import MAX_RECORD_BYTES, BaseCache, StdlibCache, StdlibLayer
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image, default_config, new_image
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Platform

KEY = hashlib.sha256(b"the inputs of a base").hexdigest()
LOCK = hashlib.sha256(b"a base lock").hexdigest()
EPOCH = 1700000000


@pytest.fixture(autouse=True)
def _cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_BUILD_CACHE_KEY", "a test machine's cache key")


def _layer(store: BlobStore, text: bytes = b"bookworm\n") -> Layer:
    entries = [LayerEntry.file("/etc/debian_version", text), LayerEntry.file("/usr/bin/x", bytes(range(256)) * 400)]
    return write_layer(entries, epoch=EPOCH, compressor=Compressor.gzip(), store=store)


def _base(staging: Path) -> Image:
    return new_image(default_config(Platform("linux", "amd64"), EPOCH), [_layer(BlobStore(staging))])


def _filled(tmp_path: Path) -> tuple[BaseCache, Image]:
    cache = BaseCache(tmp_path / "cache")
    return cache, cache.put(KEY, LOCK, _base(tmp_path / "staging"))


def test_a_base_is_a_record_naming_blobs_of_the_store(tmp_path: Path) -> None:
    cache, stored = _filled(tmp_path)
    assert sorted(p.name for p in (tmp_path / "cache" / "bases").iterdir()) == [f"{KEY}.json"]
    blobs = {p.name for p in cache.store.dir.iterdir()}
    assert blobs == {stored.digest.hex, stored.config_digest.hex, stored.layers[0].digest.hex}
    assert stored.layers[0].path == cache.store.path(stored.layers[0].digest)
    again = cache.get(KEY, LOCK)
    assert again is not None and again.digest == stored.digest == _base(tmp_path / "other").digest
    record = json.loads(cache.record(KEY).read_text())
    assert record["payload"]["manifest"]["digest"] == str(stored.digest)
    assert cache.record(KEY).stat().st_size < 1024


def test_a_base_is_used_only_for_its_own_key_and_lock(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, _ = _filled(tmp_path)
    other = hashlib.sha256(b"another lock").hexdigest()
    with caplog.at_level(logging.WARNING):
        assert cache.get(KEY, other) is None
    assert "payload.lock_sha256" in caplog.text and not cache.record(KEY).exists()
    cache, _ = _filled(tmp_path)
    cache.record(KEY).rename(cache.record(other))  # a record moved under another key
    assert cache.get(other, LOCK) is None and "payload.key" in caplog.text


@pytest.mark.parametrize("which", ["layer", "config", "manifest"])
@pytest.mark.parametrize("poison", ["same size", "truncated", "symlink", "directory"])
def test_a_poisoned_base_blob_is_refused_and_rebuilt(
    tmp_path: Path, poison: str, which: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache, stored = _filled(tmp_path)
    digest = {"layer": stored.layers[0].digest, "config": stored.config_digest, "manifest": stored.digest}[which]
    blob = cache.store.path(digest)
    honest = blob.read_bytes()
    victim = tmp_path / "victim"
    victim.write_bytes(bytes(len(honest)))
    blob.unlink()
    if poison == "same size":
        blob.write_bytes(bytes(len(honest)))
    elif poison == "truncated":
        blob.write_bytes(honest[:-1])
    elif poison == "symlink":
        blob.symlink_to(victim)  # a link out of the cache: read, refused, the link removed, its target untouched
    else:
        blob.mkdir()
    with caplog.at_level(logging.WARNING):
        assert cache.get(KEY, LOCK) is None
    assert f"the cached Debian base {KEY}.json is not trusted" in caplog.text
    assert str(digest) in caplog.text  # which blob
    assert not cache.record(KEY).exists()  # the record is evicted with it
    assert victim.read_bytes() == bytes(len(honest))
    if poison == "directory":
        # Not a blob the store wrote, so not one it removes: building the base again says what to do.
        with pytest.raises(ReproBuildError, match="is a directory, not a blob") as e:
            cache.put(KEY, LOCK, _base(tmp_path / "again"))
        assert e.value.hint is not None and f"rm -r {blob}" in e.value.hint
        assert not cache.record(KEY).exists()
        return
    assert not blob.is_symlink()
    rebuilt = cache.put(KEY, LOCK, _base(tmp_path / "again"))
    assert rebuilt.digest == stored.digest and blob.read_bytes() == honest
    assert cache.get(KEY, LOCK) is not None


def _write(cache: BaseCache, record: Any) -> None:
    cache.record(KEY).write_text(json.dumps(record))


def _sealed(payload: dict[str, Any]) -> dict[str, Any]:
    tag = seal(canonical_json_bytes(payload))
    return {"hmac": tag, "payload": payload}


def _malformed(record: dict[str, Any], case: str) -> Any:
    """``record`` (a valid one) broken as ``case`` says; resealed with the key where the case is the shape,
    so that the seal is not what refuses it."""
    payload = json.loads(json.dumps(record["payload"]))
    manifest = payload["manifest"]
    if case == "not an object":
        return ["hmac", "payload"]
    if case == "forged seal":
        return {**record, "hmac": "0" * 64}
    if case == "seal of another payload":
        return {**record, "payload": {**payload, "lock_sha256": "1" * 64}}
    if case == "extra field":
        return {**record, "path": "/etc/shadow"}
    if case == "extra payload field":
        return _sealed({**payload, "layout": "../../../home/user/evil"})
    if case == "missing field":
        del payload["manifest"]
        return _sealed(payload)
    if case == "size a string":
        manifest["size"] = str(manifest["size"])
    elif case == "size negative":
        manifest["size"] = -1
    elif case == "size a bool":
        manifest["size"] = True
    elif case == "digest a path":
        manifest["digest"] = "sha256:../../../../etc/passwd"
    elif case == "digest upper-case":
        manifest["digest"] = manifest["digest"].upper()
    elif case == "digest sha512":
        manifest["digest"] = "sha512:" + "a" * 128
    elif case == "index media type":
        manifest["media_type"] = "application/vnd.oci.image.index.v1+json"
    elif case == "another format":
        payload["format"] = 2
    elif case == "another kind":
        payload["kind"] = "debian-stdlib-bytecode"
    elif case == "wrong size":
        manifest["size"] += 1
    return _sealed(payload)


MALFORMED = [
    "not an object",
    "forged seal",
    "seal of another payload",
    "extra field",
    "extra payload field",
    "missing field",
    "size a string",
    "size negative",
    "size a bool",
    "digest a path",
    "digest upper-case",
    "digest sha512",
    "index media type",
    "another format",
    "another kind",
    "wrong size",
]


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_base_record_is_refused(tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture) -> None:
    cache, stored = _filled(tmp_path)
    record = json.loads(cache.record(KEY).read_text())
    _write(cache, _malformed(record, case))
    with caplog.at_level(logging.WARNING):
        assert cache.get(KEY, LOCK) is None
    assert f"the cached Debian base {KEY}.json is not trusted" in caplog.text
    assert not cache.record(KEY).exists()
    assert cache.store.has(stored.layers[0].digest)  # an honest blob stays; only the record goes


@pytest.mark.parametrize("case", ["not JSON", "not UTF-8", "too large", "symlink", "directory", "empty"])
def test_an_unreadable_base_record_is_refused(tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture) -> None:
    cache, _ = _filled(tmp_path)
    path = cache.record(KEY)
    good = path.read_bytes()
    path.unlink()
    if case == "not JSON":
        path.write_bytes(good[:-1])
    elif case == "not UTF-8":
        path.write_bytes(b"\xff" + good)
    elif case == "too large":
        path.write_bytes(good[:-1] + b" " * MAX_RECORD_BYTES + b"}")
    elif case == "symlink":  # to the very record it was: a record is never read through a link
        (tmp_path / "elsewhere.json").write_bytes(good)
        path.symlink_to(tmp_path / "elsewhere.json")
    elif case == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        assert cache.get(KEY, LOCK) is None
    assert "is not trusted" in caplog.text
    if case == "directory":
        with pytest.raises(ReproBuildError, match="cannot write the cache record") as e:
            cache.put(KEY, LOCK, _base(tmp_path / "again"))
        assert e.value.hint is not None and "rm -r" in e.value.hint
    else:
        assert not os.path.lexists(path)
        if case == "symlink":
            assert (tmp_path / "elsewhere.json").read_bytes() == good  # the link went, not what it named
        assert cache.put(KEY, LOCK, _base(tmp_path / "again")) is not None
        assert cache.get(KEY, LOCK) is not None


def test_without_a_cache_key_nothing_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPRO_BUILD_CACHE_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    (tmp_path / "no-config").write_text("a file where the key's directory would be")
    cache = BaseCache(tmp_path / "cache")
    stored = cache.put(KEY, LOCK, _base(tmp_path / "staging"))
    assert stored.digest == _base(tmp_path / "other").digest
    assert not cache.has(KEY) and cache.get(KEY, LOCK) is None


def test_the_directories_of_the_old_layout_are_never_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``bases/<key>/oci/`` + ``sealed.json`` and ``bases/stdlib-<key>/`` of earlier versions: not read, not removed."""
    root = tmp_path / "cache"
    old = root / "bases" / KEY
    (old / "oci").mkdir(parents=True)
    (old / "sealed.json").write_text(json.dumps({"hmac": "0" * 64, "manifest_digest": "sha256:" + "0" * 64}))
    (root / "bases" / f"stdlib-{KEY}").mkdir()
    (root / "bases" / f"stdlib-{KEY}" / "layer").write_bytes(b"evil")
    with caplog.at_level(logging.WARNING):
        assert BaseCache(root).get(KEY, LOCK) is None and StdlibCache(root).get(KEY) is None
    assert caplog.text == ""
    assert (old / "sealed.json").is_file() and (root / "bases" / f"stdlib-{KEY}" / "layer").read_bytes() == b"evil"
    assert BaseCache(root).put(KEY, LOCK, _base(tmp_path / "staging")) is not None
    assert BaseCache(root).get(KEY, LOCK) is not None and (old / "sealed.json").is_file()


# ------------------------------------------------------------------ the standard-library byte-code layer


def _stdlib(tmp_path: Path) -> tuple[StdlibCache, StdlibLayer]:
    cache = StdlibCache(tmp_path / "cache")
    layer = _layer(BlobStore(tmp_path / "staging"), b"pyc\n")
    return cache, cache.put(KEY, StdlibLayer(layer, 2))


def test_a_stdlib_layer_is_a_record_naming_a_blob_of_the_store(tmp_path: Path) -> None:
    cache, stored = _stdlib(tmp_path)
    assert sorted(p.name for p in (tmp_path / "cache" / "bases").iterdir()) == [f"stdlib-{KEY}.json"]
    assert stored.layer.path == cache.store.path(stored.layer.digest)
    again = cache.get(KEY)
    assert again is not None and again == stored and again.files == 2


@pytest.mark.parametrize("poison", ["same size", "truncated", "symlink", "directory"])
def test_a_poisoned_stdlib_blob_is_refused_and_compiled_again(
    tmp_path: Path, poison: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache, stored = _stdlib(tmp_path)
    blob = stored.layer.path
    honest = blob.read_bytes()
    blob.unlink()
    if poison == "same size":
        blob.write_bytes(bytes(len(honest)))
    elif poison == "truncated":
        blob.write_bytes(honest[:-1])
    elif poison == "symlink":
        (tmp_path / "victim").write_bytes(bytes(len(honest)))
        blob.symlink_to(tmp_path / "victim")
    else:
        blob.mkdir()
    with caplog.at_level(logging.WARNING):
        assert cache.get(KEY) is None
    assert f"standard-library byte-code stdlib-{KEY}.json is not trusted" in caplog.text
    assert f"layer blob {stored.layer.digest} is missing from the store or corrupt" in caplog.text
    assert not cache.record(KEY).exists()
    layer = _layer(BlobStore(tmp_path / "again"), b"pyc\n")
    if poison == "directory":
        with pytest.raises(ReproBuildError, match="is a directory, not a blob"):
            cache.put(KEY, StdlibLayer(layer, 2))
        return
    assert cache.put(KEY, StdlibLayer(layer, 2)) == stored and blob.read_bytes() == honest
    assert cache.get(KEY) == stored


@pytest.mark.parametrize(
    "change",
    [
        {"files": -1},
        {"files": "2"},
        {"files": False},
        {"kind": "debian-base"},
        {"key": "0" * 64},
        {"layer": {"digest": "sha256:../../x", "diff_id": "sha256:" + "0" * 64, "media_type": "x", "size": 1}},
        {"layer": "blobs/sha256/abc"},
        {"path": "/etc/passwd"},
    ],
)
def test_a_malformed_stdlib_record_is_refused(
    tmp_path: Path, change: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    cache, stored = _stdlib(tmp_path)
    payload = {**json.loads(cache.record(KEY).read_text())["payload"], **change}
    cache.record(KEY).write_text(json.dumps(_sealed(payload)))
    with caplog.at_level(logging.WARNING):
        assert cache.get(KEY) is None
    assert "is not trusted" in caplog.text and not cache.record(KEY).exists()
    assert cache.store.has(stored.layer.digest)


def test_a_stdlib_layer_of_another_media_type_is_refused(tmp_path: Path) -> None:
    cache, _ = _stdlib(tmp_path)
    payload = json.loads(cache.record(KEY).read_text())["payload"]
    payload["layer"]["media_type"] = "application/vnd.oci.image.manifest.v1+json"
    cache.record(KEY).write_text(json.dumps(_sealed(payload)))
    assert cache.get(KEY) is None


# ------------------------------------------------------------------ two processes at once

_FILL = """
import sys
from pathlib import Path
from reprobuild.image.basecache import BaseCache, StdlibCache, StdlibLayer
from tests.image.test_basecache import KEY, LOCK, _base, _layer
from reprobuild.oci.blobstore import BlobStore

root, staging, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
bases, stdlib = BaseCache(root), StdlibCache(root)
for i in range(rounds):
    image = _base(staging / f"base-{i}")
    assert bases.put(KEY, LOCK, image).digest == image.digest
    found = bases.get(KEY, LOCK)
    assert found is not None and found.digest == image.digest, i
    layer = _layer(BlobStore(staging / f"stdlib-{i}"), b"pyc\\n")
    stdlib.put(KEY, StdlibLayer(layer, 2))
    got = stdlib.get(KEY)
    assert got is not None and got.layer.digest == layer.digest, i
"""


def test_two_processes_fill_one_entry_at_once(tmp_path: Path) -> None:
    """Two processes write and read the same base and byte-code entries over and over, at the same time: both
    succeed, never see a record they must refuse, and leave whole blobs, whole records and no temporary file."""
    root = tmp_path / "cache"
    env = {**os.environ, "REPRO_BUILD_CACHE_KEY": "a test machine's cache key"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _FILL, str(root), str(tmp_path / f"stage{i}"), "25"],
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).parents[2],
        )
        for i in range(2)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert all("not trusted" not in e for e in errors), errors
    store = BlobStore(root)
    for blob in store.dir.iterdir():
        assert blob.is_file() and not blob.name.startswith(".")
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert sorted(p.name for p in (root / "bases").iterdir()) == [f"{KEY}.json", f"stdlib-{KEY}.json"]
    assert BaseCache(root).get(KEY, LOCK) is not None and StdlibCache(root).get(KEY) is not None
