"""The wheel cache: local find-links files (file://) are verified like downloads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reprobuild.errors import DigestMismatchError
from reprobuild.image.wheels import WheelCache, WheelPin


def test_file_url_is_verified_and_cached(tmp_path: Path) -> None:
    wheel = tmp_path / "links" / "demo-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"not a real wheel, but bytes with a hash")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    cache = WheelCache(tmp_path / "cache")
    pin = WheelPin("demo", "1.0", wheel.name, sha, wheel.stat().st_size)
    got = cache.fetch(pin, wheel.as_uri())
    assert got.read_bytes() == wheel.read_bytes() and got.parent.name == sha
    wrong = WheelPin("demo", "1.0", wheel.name, "0" * 64, None)
    with pytest.raises(DigestMismatchError, match="the lock pins sha256:0000"):
        cache.fetch(wrong, wheel.as_uri())
    assert not cache.path(wrong).exists()
    # A cached file that no longer matches its name is dropped, not used.
    got.write_bytes(b"tampered")
    assert cache.get(pin) is None and not got.exists()
