"""The wheel cache: wheels live in the cache's one blob store and are handed out under their pinned names."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reprobuild.errors import DigestMismatchError, ImageError, LockError
from reprobuild.image.wheels import WheelCache, WheelPin
from reprobuild.oci.blobstore import cache_store
from reprobuild.oci.digest import Digest


def _wheel(tmp_path: Path, data: bytes = b"not a real wheel, but bytes with a hash") -> tuple[Path, WheelPin]:
    wheel = tmp_path / "links" / "demo-1.0-py3-none-any.whl"
    wheel.parent.mkdir(exist_ok=True)
    wheel.write_bytes(data)
    return wheel, WheelPin("demo", "1.0", wheel.name, hashlib.sha256(data).hexdigest(), len(data))


def test_file_url_is_verified_stored_and_staged_under_its_name(tmp_path: Path) -> None:
    wheel, pin = _wheel(tmp_path)
    cache = WheelCache(tmp_path / "cache", staging=tmp_path / "stage")
    got = cache.fetch(pin, wheel.as_uri())
    assert got == tmp_path / "stage" / wheel.name and got.read_bytes() == wheel.read_bytes()
    blob = tmp_path / "cache" / "blobs" / "sha256" / pin.sha256
    assert blob.read_bytes() == wheel.read_bytes()
    assert not list((tmp_path / "cache").rglob("*.whl"))  # the store holds bytes, never names
    wrong = WheelPin("demo", "1.0", wheel.name, "0" * 64, None)
    with pytest.raises(DigestMismatchError, match="the lock pins sha256:0000"):
        cache.fetch(wrong, wheel.as_uri())
    assert not cache.store.has(Digest("0" * 64))


def test_a_poisoned_blob_is_evicted_and_fetched_again(tmp_path: Path) -> None:
    wheel, pin = _wheel(tmp_path)
    cache = WheelCache(tmp_path / "cache", staging=tmp_path / "stage")
    cache.fetch(pin, wheel.as_uri())
    blob = cache.store.path(Digest(pin.sha256))
    blob.write_bytes(b"tampered")  # the staged link shares the inode: both read the poison now
    assert cache.get(pin) is None
    assert not blob.exists() and not cache.path(pin).exists()
    assert cache.fetch(pin, wheel.as_uri()).read_bytes() == wheel.read_bytes()
    # Same length, other bytes: the size check alone would not catch it.
    blob.unlink()
    blob.write_bytes(bytes(len(wheel.read_bytes())))
    with pytest.raises(ImageError, match=r"not in the cache: demo-1\.0-py3-none-any\.whl"):
        cache.require([pin])
    assert not blob.exists()
    blob.mkdir()  # not a file at all: no blob, and no traceback
    assert cache.get(pin) is None and not cache.path(pin).exists()


def test_a_staged_name_is_the_pins_never_the_caches(tmp_path: Path) -> None:
    wheel, pin = _wheel(tmp_path)
    cache = WheelCache(tmp_path / "cache", staging=tmp_path / "stage")
    cache.fetch(pin, wheel.as_uri())
    for name in ("../../evil-1.0-py3-none-any.whl", "/etc/evil-1.0-py3-none-any.whl", "x.tar.gz"):
        with pytest.raises(LockError, match="is not a wheel file name"):
            cache.get(WheelPin("demo", "1.0", name, pin.sha256, pin.size))
    with pytest.raises(LockError, match="is not a wheel file name and a sha256"):
        cache.get(WheelPin("demo", "1.0", wheel.name, "../" + pin.sha256[3:], pin.size))


def test_staging_copies_across_file_systems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a hard link is refused (another file system), the staged file is a verified copy."""
    import errno
    import os

    wheel, pin = _wheel(tmp_path)
    cache = WheelCache(tmp_path / "cache", staging=tmp_path / "stage")
    cache.fetch(pin, wheel.as_uri())

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    staged = cache.get(pin)
    assert staged is not None and staged.read_bytes() == wheel.read_bytes()
    assert staged.stat().st_ino != cache.store.path(Digest(pin.sha256)).stat().st_ino


def test_a_deb_and_a_wheel_share_the_store(tmp_path: Path) -> None:
    from reprobuild.base.debian.fetch import DebCache

    wheel, pin = _wheel(tmp_path)
    deb = tmp_path / "mirror" / "pool" / "h" / "hello_1.0_amd64.deb"
    deb.parent.mkdir(parents=True)
    deb.write_bytes(b"!<arch>\n" + b"a deb, or near enough\n")
    deb_sha = hashlib.sha256(deb.read_bytes()).hexdigest()
    root = tmp_path / "cache"
    debs = DebCache(root)
    wheels = WheelCache(root, staging=tmp_path / "stage")
    got_deb = debs.get(deb_sha, deb.stat().st_size, deb.as_uri(), "hello 1.0")
    wheels.fetch(pin, wheel.as_uri())
    store = cache_store(root)
    assert got_deb == store.path(Digest(deb_sha))
    assert sorted(p.name for p in store.dir.iterdir()) == sorted([deb_sha, pin.sha256])
    # Each cache reads only what its pin names: the wheel's digest does not make the .deb a wheel.
    assert debs.peek(pin.sha256, deb.stat().st_size) is None  # other size
    assert wheels.get(WheelPin("hello", "1.0", "hello-1.0-py3-none-any.whl", deb_sha, 1)) is None  # other size
    assert debs.get(deb_sha, deb.stat().st_size, "http://127.0.0.1:1/x.deb", "hello", offline=True) == got_deb
