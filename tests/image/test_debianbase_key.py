"""The Debian base cache entry is keyed by everything the base's bytes depend on: the lock and the compressor."""

from __future__ import annotations

import pytest

from reprobuild.image import debianbase
from reprobuild.oci import compress
from reprobuild.oci.compress import Compressor

LOCK_SHA = "0" * 64


def test_key_depends_on_lock_and_level() -> None:
    key = debianbase._cache_key(LOCK_SHA, Compressor.gzip(6))
    assert key == debianbase._cache_key(LOCK_SHA, Compressor.gzip(6))
    assert key != debianbase._cache_key("1" * 64, Compressor.gzip(6))
    assert key != debianbase._cache_key(LOCK_SHA, Compressor.gzip(9))


def test_key_depends_on_the_compressor_library_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """A base cached by an older libdeflate (or the zlib era) is not found by a newer repro-build."""
    before = debianbase._cache_key(LOCK_SHA, Compressor.gzip())
    monkeypatch.setattr(compress, "libdeflate_versions", lambda: ("0.0.1", "0.1"))
    assert debianbase._cache_key(LOCK_SHA, Compressor.gzip()) != before
