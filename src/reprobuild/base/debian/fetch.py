"""Downloads, and the cache of ``.deb`` files and Packages indexes.

Both live in the cache's one blob store (:func:`reprobuild.oci.blobstore.cache_store`,
``$REPRO_BUILD_CACHE/blobs/sha256/<hex>``, default ``~/.cache/repro-build``) beside wheels and layers.
An entry is found by the sha256 the lock (or the signed Release file) pins and is re-hashed on
*every* use: a tampered or truncated entry is deleted and fetched again, or refused when the mirror
cannot be reached. Downloads go through :func:`reprobuild.download.fetch_file` (streamed to a
temporary file beside the entry, hashed while streaming, checked against the lock, retried on
transient failures, renamed into place), so neither a download nor a cache hit holds a whole file in
memory. With a warm cache a build makes no network request at all.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from reprobuild.cache import cache_root
from reprobuild.download import Failure, fetch_bytes
from reprobuild.errors import BaseImageError, DigestMismatchError, OCIError
from reprobuild.oci.blobstore import BlobStore, cache_store
from reprobuild.oci.digest import Digest
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


def pinned(sha256: str, what: str) -> Digest:
    """The digest a lock or Release file pins for ``what``; a value that is not 64 hex digits is refused."""
    try:
        return Digest(sha256)
    except OCIError as e:
        raise BaseImageError(
            f"{what}: the pinned sha256 {sha256!r} is not 64 lowercase hex digits",
            hint="the lock was edited by hand; make it again with `repro-build base lock`",
        ) from e


@dataclass(frozen=True)
class DebCache:
    """``.deb`` files (and Packages indexes) in the cache's blob store (``<root>/blobs/sha256/<hex>``),
    found by the sha256 the lock (or the Release file) pins and re-hashed on every use."""

    root: Path

    @property
    def store(self) -> BlobStore:
        return cache_store(self.root)

    def path(self, sha256: str) -> Path:
        """Where the entry for ``sha256`` lives."""
        return self.store.path(pinned(sha256, "a .deb"))

    def peek(self, sha256: str, size: int, what: str = "a .deb") -> Path | None:
        """The cached entry pinned by ``sha256``/``size`` if present and intact (nothing is downloaded or
        removed: :meth:`get` says what is wrong with an entry)."""
        return self.store.verified(pinned(sha256, what), size=size, evict=False)

    def get(
        self, sha256: str, size: int, url: str, what: str, *, offline: bool = False, progress: Progress = NO_PROGRESS
    ) -> Path:
        """The verified cache entry of the ``.deb`` pinned by ``sha256``/``size``, downloaded if needed.

        A cached entry is re-hashed before use; a mismatch deletes it and downloads again (or, when
        ``offline``, raises :class:`DigestMismatchError`). A download is verified before it takes the
        entry's name.
        """
        digest = pinned(sha256, what)
        present = self.store.has(digest)
        entry = self.store.verified(digest, size=size)
        if entry is not None:
            return entry
        if offline and present:
            raise DigestMismatchError(
                f"{what}: the cached file {self.store.path(digest)} does not match the lock's sha256 {sha256}; "
                "it was removed",
                hint="run the build again with network access to fetch it from the mirror",
            )
        if offline:
            raise BaseImageError(
                f"{what} is not in the cache ({self.store.path(digest)}) and the build is offline",
                hint="run `repro-build base build` once with network access to warm the cache",
            )
        parts = urllib.parse.urlsplit(url)
        name = urllib.parse.unquote(parts.path.rsplit("/", 1)[-1])
        with progress.task(f"downloading {name} from {parts.hostname or 'a local directory'}", size) as task:
            return self.store.fetch(url, expected=digest, size=size, what=what, failure=MIRROR, progress=task)
