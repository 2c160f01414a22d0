"""Downloads, and the sha256-keyed cache of ``.deb`` files and indexes.

Cache layout: ``$REPRO_BUILD_CACHE/debs/<sha256>.deb`` (default ``~/.cache/repro-build``). An entry
is named by the sha256 the lock pins, is written atomically (temp file + fsync + rename), and is
re-hashed on *every* use: a tampered or truncated entry is deleted and fetched again, or refused
when the mirror cannot be reached. With a warm cache a build makes no network request at all.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from reprobuild.cache import cache_root
from reprobuild.errors import BaseImageError, DigestMismatchError
from reprobuild.fsutil import atomic_write_bytes
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.urls import redact

#: Seconds to wait for a mirror to answer; a pinned build fails fast rather than hang.
HTTP_TIMEOUT = 60
#: Bytes read from a response at a time (progress is reported per chunk).
_CHUNK = 1 << 16


def default_cache_dir() -> Path:
    """repro-build's cache root (:func:`reprobuild.cache.cache_root`)."""
    return cache_root()


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def http_get(url: str, what: str, progress: Callable[[int], None] | None = None) -> bytes:
    """GET ``url`` (http, https or file) and return the body; errors name ``what`` and the redacted URL.

    ``progress`` is told each number of bytes received.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        path = Path(urllib.parse.unquote(parts.path))
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BaseImageError(f"reading {what} from {path}: {e.strerror}") from e
        if progress is not None:
            progress(len(data))
        return data
    try:
        with requests.get(url, timeout=HTTP_TIMEOUT, stream=True) as response:
            body = _read_body(response, progress) if response.status_code == 200 else b""
    except requests.RequestException as e:
        raise BaseImageError(
            f"downloading {what} from {redact(url)}: {type(e).__name__}",
            hint="check the mirror URL and the network; with a warm cache and a lock, "
            "`repro-build base build` needs no network",
        ) from e
    if response.status_code != 200:
        raise BaseImageError(
            f"downloading {what} from {redact(url)}: HTTP {response.status_code}",
            hint="check the mirror URL, the suite and the architecture",
        )
    return body


def _read_body(response: requests.Response, progress: Callable[[int], None] | None) -> bytes:
    parts: list[bytes] = []
    for chunk in response.iter_content(_CHUNK):
        parts.append(chunk)
        if progress is not None:
            progress(len(chunk))
    return b"".join(parts)


@dataclass(frozen=True)
class DebCache:
    """A directory of ``.deb`` files keyed by their sha256."""

    root: Path

    def path(self, sha256: str) -> Path:
        """Where the entry for ``sha256`` lives."""
        return self.root / "debs" / f"{sha256}.deb"

    def peek(self, sha256: str, size: int) -> bytes | None:
        """The cached bytes pinned by ``sha256``/``size`` if present and intact (nothing is downloaded)."""
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError:
            return None
        return data if len(data) == size and sha256_hex(data) == sha256 else None

    def get(
        self, sha256: str, size: int, url: str, what: str, *, offline: bool = False, progress: Progress = NO_PROGRESS
    ) -> bytes:
        """The verified bytes of the ``.deb`` pinned by ``sha256``/``size``.

        A cached entry is re-hashed before use; a mismatch deletes it and downloads again (or, when
        ``offline``, raises :class:`DigestMismatchError`). Downloaded bytes are verified before they
        are written to the cache.
        """
        entry = self.path(sha256)
        try:
            data = entry.read_bytes()
        except FileNotFoundError:
            data = None
        if data is not None:
            if len(data) == size and sha256_hex(data) == sha256:
                return data
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
        name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        host = urllib.parse.urlsplit(url).hostname or "a local directory"
        with progress.task(f"downloading {name} from {host}", size) as task:
            data = http_get(url, what, task)
        actual = sha256_hex(data)
        if actual != sha256 or len(data) != size:
            raise DigestMismatchError(
                f"{what} from {redact(url)}: sha256 {actual} ({len(data)} bytes) does not match "
                f"the lock's {sha256} ({size} bytes)",
                hint="the mirror serves different bytes than the lock pins; use a snapshot mirror "
                "or refresh the lock with `repro-build base lock`",
            )
        atomic_write_bytes(entry, data)
        return data
