"""Fixtures for the Debian base: a real lock of the default set, with a download cache kept across runs.

The cache (``~/.cache/repro-build-tests/debian``) holds the verified Packages index and .deb files
keyed by sha256, so the suite downloads them once per machine; tests that must start from a clean
cache make their own empty one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from reprobuild.base.debian.fetch import DebCache
from reprobuild.base.debian.lock import BaseInputs, BaseLock, make_lock, write_lock

SUITE = "bookworm"
ARCH = "amd64"


@dataclass(frozen=True)
class LockedBase:
    inputs: BaseInputs
    lock: BaseLock
    path: Path
    cache: DebCache


@pytest.fixture(scope="session")
def shared_cache() -> DebCache:
    return DebCache(Path.home() / ".cache" / "repro-build-tests" / "debian")


@pytest.fixture(scope="session")
def locked_base(shared_cache: DebCache, tmp_path_factory: pytest.TempPathFactory) -> LockedBase:
    """The default package set locked against the machine's mirror (network: Release + index)."""
    inputs = BaseInputs(SUITE, ARCH, None)  # the machine's apt sources
    lock = make_lock(inputs, shared_cache)
    path = tmp_path_factory.mktemp("lock") / f"base-{SUITE}-{ARCH}.json"
    write_lock(path, lock)
    return LockedBase(inputs, lock, path, shared_cache)
