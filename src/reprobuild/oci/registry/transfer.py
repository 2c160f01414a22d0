"""The values a blob or manifest transfer carries along: what it is about (for error messages), an
upload's expectations, and a request body that hashes what it sends (a download's state is
:class:`reprobuild.download.Receiver`). Private to :mod:`reprobuild.oci.registry`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlencode, urlsplit

from reprobuild.errors import RegistryError
from reprobuild.oci.digest import DIGEST_RE


def split_digest(digest: str, what: str) -> tuple[str, str]:
    if not DIGEST_RE.match(digest):
        raise RegistryError(
            f"{what}: `{digest}` is not a digest",
            "a digest is `sha256:` followed by 64 lowercase hex digits",
        )
    algorithm, _, hexdigest = digest.partition(":")
    return algorithm, hexdigest


def is_digest(reference: str) -> bool:
    """True when ``reference`` is a content digest rather than a tag."""
    return bool(DIGEST_RE.match(reference))


@dataclass(frozen=True)
class Target:
    """What a request is about, for error messages: ``kind`` is manifest, blob, tags, referrers, upload or token."""

    kind: str
    repository: str
    reference: str = ""

    def describe(self, host: str) -> str:
        if self.kind == "manifest":
            sep = "@" if is_digest(self.reference) else ":"
            return f"manifest `{host}/{self.repository}{sep}{self.reference}`"
        if self.kind in {"blob", "upload"}:
            return f"blob `{host}/{self.repository}@{self.reference}`"
        if self.kind == "referrers":
            return f"referrers of `{host}/{self.repository}@{self.reference}`"
        if self.kind == "token":
            return f"the token server of `{host}`"
        return f"tags of `{host}/{self.repository}`"


@dataclass(frozen=True)
class Upload:
    """One blob upload: where it goes, what it must hash to, and whom to tell about progress."""

    target: Target
    digest: str
    size: int
    algorithm: str
    expected: str
    scopes: tuple[str, ...]
    progress: Callable[[int], None] | None


class HashingReader:
    """A file-like body for ``requests`` that sends exactly ``size`` bytes and hashes them.

    ``__len__`` makes ``requests`` send a ``Content-Length`` instead of chunked transfer encoding, which
    distribution requires for a monolithic ``PUT``.
    """

    def __init__(self, source: IO[bytes], size: int, algorithm: str, progress: Callable[[int], None] | None) -> None:
        self._source = source
        self._remaining = size
        self.hasher = hashlib.new(algorithm)
        self._progress = progress
        self.short = False

    def __len__(self) -> int:
        return self._remaining

    def read(self, n: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        want = self._remaining if n is None or n < 0 else min(n, self._remaining)
        data = self._source.read(want)
        if not data:
            # The source ended before the declared size: stop the request rather than let the
            # server wait for bytes that never come.
            self.short = True
            raise ShortBodyError
        self._remaining -= len(data)
        self.hasher.update(data)
        if self._progress is not None:
            self._progress(len(data))
        return data


class ShortBodyError(Exception):
    """Raised inside a request body when the source is shorter than its declared size."""


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` appended, leaving the registry's own query (upload state) untouched."""
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def range_end(header: str | None) -> int | None:
    """The last byte offset of a ``Range: 0-N`` upload status header (distribution's non-RFC form)."""
    if not header:
        return None
    m = re.fullmatch(r"\s*(?:bytes=)?0-(\d+)\s*", header)
    return int(m.group(1)) if m else None


def read_exactly(source: IO[bytes], n: int) -> bytes:
    parts: list[bytes] = []
    remaining = n
    while remaining > 0:
        data = source.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)
