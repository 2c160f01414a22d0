"""Downloads, and the sha256-keyed cache of ``.deb`` files and indexes.

Cache layout: ``$REPRO_BUILD_CACHE/debs/<sha256>.deb`` (default ``~/.cache/repro-build``). An entry
is named by the sha256 the lock pins and is re-hashed on *every* use: a tampered or truncated entry
is deleted and fetched again, or refused when the mirror cannot be reached. Downloads go through
:func:`reprobuild.download.fetch_file` (streamed to a temporary file beside the entry, hashed while
streaming, checked against the lock, retried on transient failures, renamed into place), so neither
a download nor a cache hit holds a whole file in memory. With a warm cache a build makes no network
request at all.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from reprobuild.cache import cache_root
from reprobuild.download import Failure, fetch_bytes, fetch_file
from reprobuild.errors import BaseImageError, DigestMismatchError
from reprobuild.oci.digest import sha256_file
from reprobuild.oci.progress import NO_PROGRESS, Progress

#: How mirror downloads word their errors.
MIRROR = Failure(
    error=BaseImageError,
    source="the mirror",
    expected_by="the lock pins",
    mismatch_hint="the mirror serves different bytes than the lock pins; use a snapshot mirror "
    "or refresh the lock with `repro-build base lock`",
    slow_hint="check the mirror URL and the network; with a warm cache and a lock, "
    "`repro-build base build` needs no network",
)


def default_cache_dir() -> Path:
    """repro-build's cache root (:func:`reprobuild.cache.cache_root`)."""
    return cache_root()


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def http_get(url: str, what: str) -> bytes:
    """The body at ``url`` (http, https or file) when no digest pins it yet (a signed InRelease file),
    retried and bounded (:func:`reprobuild.download.fetch_bytes`); errors name ``what`` and the redacted URL."""
    return fetch_bytes(url, what, failure=MIRROR)


def intact(path: Path, sha256: str, size: int) -> bool:
    """True when the file at ``path`` has ``size`` bytes and sha256 ``sha256`` (read in chunks)."""
    try:
        if path.stat().st_size != size:
            return False
        return sha256_file(path)[0].hex == sha256
    except FileNotFoundError:
        return False


@dataclass(frozen=True)
class DebCache:
    """A directory of ``.deb`` files keyed by their sha256."""

    root: Path

    def path(self, sha256: str) -> Path:
        """Where the entry for ``sha256`` lives."""
        return self.root / "debs" / f"{sha256}.deb"

    def peek(self, sha256: str, size: int) -> Path | None:
        """The cached entry pinned by ``sha256``/``size`` if present and intact (nothing is downloaded)."""
        entry = self.path(sha256)
        return entry if intact(entry, sha256, size) else None

    def get(
        self, sha256: str, size: int, url: str, what: str, *, offline: bool = False, progress: Progress = NO_PROGRESS
    ) -> Path:
        """The verified cache entry of the ``.deb`` pinned by ``sha256``/``size``, downloaded if needed.

        A cached entry is re-hashed before use; a mismatch deletes it and downloads again (or, when
        ``offline``, raises :class:`DigestMismatchError`). A download is verified before it takes the
        entry's name.
        """
        entry = self.path(sha256)
        if intact(entry, sha256, size):
            return entry
        if entry.exists():
            entry.unlink(missing_ok=True)
            if offline:
                raise DigestMismatchError(
                    f"{what}: the cached file {entry} does not match the lock's sha256 {sha256}; it was removed",
                    hint="run the build again with network access to fetch it from the mirror",
                )
        elif offline:
            raise BaseImageError(
                f"{what} is not in the cache ({entry}) and the build is offline",
                hint="run `repro-build base build` once with network access to warm the cache",
            )
        parts = urllib.parse.urlsplit(url)
        name = urllib.parse.unquote(parts.path.rsplit("/", 1)[-1])
        with progress.task(f"downloading {name} from {parts.hostname or 'a local directory'}", size) as task:
            return fetch_file(url, entry, sha256=sha256, size=size, what=what, failure=MIRROR, progress=task)
