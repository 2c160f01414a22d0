"""Verified downloads: every byte repro-build fetches over HTTP (``.deb`` files, Packages indexes, wheels,
registry blobs) goes through here.

* **Streamed, never held.** A body is read one socket read at a time and written to a temporary file
  beside its destination; memory stays at one read (1 MiB) whatever the file's size.
* **Hashed while streaming, checked against a digest from outside.** The expected digest (and size)
  come from a lock or a manifest, never from the server or the cache; more bytes than expected stop
  the transfer at once; a mismatch raises :class:`~reprobuild.errors.DigestMismatchError` and the
  temporary file is removed, so nothing unverified ever takes the destination's name.
* **Retried under one policy** (:class:`reprobuild.retry.RetryPolicy`): connection failures, dropped
  bodies, ``408``/``429``/``5xx``. A dropped body resumes with ``Range: bytes=N-``; a server that
  ignores the range is read again from the start. Other ``4xx`` answers fail at once.
* **Deadlines.** Connect and read timeouts per request, and an overall deadline per download (every
  try and every byte), lengthened by one second per 64 KiB of the expected size; a server that sends a
  byte every few seconds is given up on at the deadline.
* **Published atomically** (fsync, then rename; across file systems a synced copy then a rename).

:func:`fetch_file` is the whole path for a plain URL (``http``, ``https`` or ``file``);
:class:`Receiver` and :func:`receive` are the parts the registry client reuses behind its own
authentication.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeAlias

from reprobuild.errors import DigestMismatchError, DownloadError, ReproBuildError
from reprobuild.fsutil import move_file
from reprobuild.retry import DEFAULT_POLICY, RetryPolicy, TransientError, send_once, transient_errors
from reprobuild.urls import redact, redact_text

if TYPE_CHECKING:
    # Imported where a session is first made (:func:`_session`): a build that downloads nothing (a warm
    # one) starts without it.
    import requests

__all__ = [
    "READ_SIZE",
    "Receiver",
    "Timeouts",
    "fetch_bytes",
    "fetch_file",
    "receive",
    "stream_body",
]

#: Bytes per socket read while streaming (large enough to keep the hashing loop cheap, small enough to
#: keep memory flat).
READ_SIZE = 1 << 20
#: Slowest average rate a large download may take beyond the deadline: a 1 GB file gets 4.5 more hours.
_MIN_RATE = 64 * 1024
#: Largest body :func:`fetch_bytes` reads into memory (an InRelease file is a few hundred KB).
_MAX_SMALL_BODY = 64 << 20


@dataclass(frozen=True)
class Timeouts:
    """Seconds to open a connection, to wait for each read, and for one whole download (every try)."""

    connect: float = 10.0
    read: float = 60.0
    overall: float = 120.0

    def deadline(self, size: int | None = None) -> float:
        """The :func:`time.monotonic` value at which a download of ``size`` bytes, starting now, gives up."""
        return time.monotonic() + self.overall + (size or 0) / _MIN_RATE

    @property
    def requests_timeout(self) -> tuple[float, float]:
        return (self.connect, self.read)


@dataclass(frozen=True)
class Failure:
    """How to word an error about one download: the error class and the hints for its kinds of failure."""

    error: type[ReproBuildError] = DownloadError
    source: str = "the server"
    expected_by: str = "expected"
    mismatch_hint: str = "the server sent other bytes than the pinned ones; nothing was kept"
    slow_hint: str = "check the network, or try again later"


def stream_body(response: requests.Response, deadline: float, what: str, failure: Failure) -> Iterator[bytes]:
    """The body as it arrives (one socket read at a time, no content decoding), stopped at ``deadline``."""
    while True:
        if time.monotonic() > deadline:
            raise failure.error(
                f"{what}: {failure.source} is sending too slowly; gave up at the deadline", failure.slow_hint
            )
        chunk = response.raw.read1(READ_SIZE, decode_content=False)
        if not chunk:
            return
        yield chunk


class Receiver:
    """One download across resumed connections: where the bytes go, how many arrived, their hash.

    ``expected`` is the hex digest the bytes must have (``None``: only ``size``/``limit`` are checked);
    ``size`` the exact length when known; ``limit`` the most bytes accepted when ``size`` is not known.
    """

    def __init__(
        self,
        what: str,
        dest: IO[bytes],
        *,
        algorithm: str = "sha256",
        expected: str | None = None,
        size: int | None = None,
        limit: int | None = None,
        progress: Callable[[int], None] | None = None,
        failure: Failure = Failure(),
    ) -> None:
        self.what = what
        self.failure = failure
        self._algorithm = algorithm
        self._expected = expected
        self._dest = dest
        self._start = dest.tell() if dest.seekable() else None
        self._size = size
        self._limit = limit
        self._progress = progress
        self.hasher = hashlib.new(algorithm)
        self.received = 0

    def restart(self) -> None:
        """Discard what was received, when the server cannot resume; fail when ``dest`` cannot seek."""
        if self._start is None:
            raise self.failure.error(
                f"{self.what}: the connection dropped after {self.received} bytes and {self.failure.source} "
                "cannot resume (it ignores Range requests)",
                "try again; download into a seekable file to allow a restart",
            )
        self._dest.seek(self._start)
        self._dest.truncate()
        if self._progress is not None and self.received:
            self._progress(-self.received)  # the bytes are received again: count them once
        self.hasher, self.received = hashlib.new(self._algorithm), 0

    def complete(self) -> bool:
        return self._size is not None and self.received == self._size

    def expect_total(self, total: int) -> None:
        if self._size is not None and total != self._size:
            raise DigestMismatchError(
                f"{self.what}: {self.failure.source} announces {total} bytes, {self.failure.expected_by} {self._size}",
                self.failure.mismatch_hint,
            )
        if self._size is None and self._limit is not None and total > self._limit:
            raise self.failure.error(
                f"{self.what}: {self.failure.source} announces {total} bytes, more than the {self._limit} accepted",
                "check the URL; this is not the file that was asked for",
            )

    def write(self, chunk: bytes) -> None:
        if self._size is not None and self.received + len(chunk) > self._size:
            raise DigestMismatchError(
                f"{self.what}: {self.failure.source} sent more than the {self._size} bytes {self.failure.expected_by}",
                self.failure.mismatch_hint,
            )
        if self._size is None and self._limit is not None and self.received + len(chunk) > self._limit:
            raise self.failure.error(
                f"{self.what}: {self.failure.source} sent more than the {self._limit} bytes accepted",
                "check the URL; this is not the file that was asked for",
            )
        self.hasher.update(chunk)
        self._dest.write(chunk)
        self.received += len(chunk)
        if self._progress is not None:
            self._progress(len(chunk))

    def finish(self) -> None:
        """Raise :class:`DigestMismatchError` unless the bytes have the expected size and digest."""
        if self._size is not None and self.received != self._size:
            raise DigestMismatchError(
                f"{self.what}: {self.failure.source} sent {self.received} bytes, "
                f"{self.failure.expected_by} {self._size}",
                self.failure.mismatch_hint,
            )
        actual = self.hasher.hexdigest()
        if self._expected is not None and actual != self._expected:
            raise DigestMismatchError(
                f"{self.what}: the bytes served have digest {self._algorithm}:{actual}, "
                f"{self.failure.expected_by} {self._algorithm}:{self._expected}",
                self.failure.mismatch_hint,
            )


#: Sends one GET with the extra ``headers`` (``Range``, ``Accept-Encoding``). Returns an answer whose
#: status is not transient, or raises :class:`TransientError` (connection failure, ``5xx``, ``429``).
Send: TypeAlias = "Callable[[dict[str, str]], requests.Response]"


def receive(
    send: Send,
    state: Receiver,
    *,
    policy: RetryPolicy,
    deadline: float,
    refuse: Callable[[requests.Response], BaseException],
    exhausted: Callable[[TransientError, int], BaseException],
) -> None:
    """Stream one download into ``state`` under ``policy``, resuming dropped bodies; then check it.

    ``refuse`` turns an answer that is neither 200, 206 nor a finished 416 into the error to raise;
    ``exhausted`` words the error after the last try.
    """

    def attempt(_: int) -> None:
        headers = {"Accept-Encoding": "identity"}
        if state.received:
            headers["Range"] = f"bytes={state.received}-"
        response = send(headers)
        try:
            if not _accept(response, state, refuse):
                return
            for chunk in stream_body(response, deadline, state.what, state.failure):
                state.write(chunk)
        except transient_errors() as e:
            raise TransientError(f"the connection dropped after {state.received} bytes ({type(e).__name__})") from None
        finally:
            response.close()

    policy.run(attempt, deadline=deadline, exhausted=exhausted, what=state.what)
    state.finish()


def _accept(response: requests.Response, state: Receiver, refuse: Callable[[requests.Response], BaseException]) -> bool:
    """Check one answer against the download so far; False when there is nothing more to read."""
    status = response.status_code
    if state.received and status == 416 and state.complete():
        return False  # everything had arrived before the connection dropped
    if state.received and status == 200:
        state.restart()  # the server ignored Range: start over (or fail when we cannot)
    elif state.received and status == 206:
        content_range = response.headers.get("Content-Range", "")
        if not content_range.startswith(f"bytes {state.received}-"):
            raise state.failure.error(
                f"{state.what}: asked to resume at byte {state.received}, {state.failure.source} sent "
                f"`Content-Range: {content_range}`",
                "try again later",
            )
    elif status != 200:
        raise refuse(response)
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        state.expect_total(state.received + int(length))
    return True


# ---------------------------------------------------------------------------- plain URLs

_SESSIONS = threading.local()


def _session() -> requests.Session:
    """One keep-alive session per thread (downloads run on a thread pool)."""
    session: requests.Session | None = getattr(_SESSIONS, "session", None)
    if session is None:
        import requests

        session = requests.Session()
        _SESSIONS.session = session
    return session


def _plain_send(url: str, what: str, timeouts: Timeouts, session: requests.Session | None) -> Send:
    def send(headers: dict[str, str]) -> requests.Response:
        return send_once(
            lambda: (session or _session()).get(
                url, headers={"User-Agent": "repro-build", **headers}, stream=True, timeout=timeouts.requests_timeout
            ),
            unreachable="cannot connect",
            answered=lambda response: f"the server answered HTTP {response.status_code}",
        )

    return send


def _download(
    url: str,
    state: Receiver,
    *,
    policy: RetryPolicy,
    timeouts: Timeouts,
    size: int | None,
    session: requests.Session | None,
) -> None:
    what, failure = state.what, state.failure
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        from urllib.request import url2pathname  # with http.client and ssl: only for a file URL

        path = Path(url2pathname(parts.path))
        try:
            with path.open("rb") as f:
                while chunk := f.read(READ_SIZE):
                    state.write(chunk)
        except OSError as e:
            raise failure.error(f"reading {what} from {path}: {e.strerror}", "check the path") from e
        state.finish()
        return
    if parts.scheme not in {"http", "https"}:
        raise failure.error(f"{what}: `{redact(url)}` is not an http(s) or file URL", "check the mirror or index URL")

    def refuse(response: requests.Response) -> BaseException:
        return failure.error(
            f"downloading {what} from {redact(url)}: HTTP {response.status_code}",
            "check the URL; an answer like this is not retried",
        )

    def exhausted(e: TransientError, tries: int) -> BaseException:
        return failure.error(
            f"downloading {what} from {redact(url)}: {redact_text(e.reason)} (gave up after {tries} "
            f"attempt{'s' if tries != 1 else ''})",
            "check the mirror URL and the network, or try again later",
        )

    receive(
        _plain_send(url, what, timeouts, session),
        state,
        policy=policy,
        deadline=timeouts.deadline(size),
        refuse=refuse,
        exhausted=exhausted,
    )


def fetch_file(
    url: str,
    dest: Path,
    *,
    sha256: str,
    size: int | None,
    what: str,
    failure: Failure = Failure(),
    policy: RetryPolicy = DEFAULT_POLICY,
    timeouts: Timeouts = Timeouts(),
    session: requests.Session | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Download ``url`` into ``dest`` only if its bytes have ``sha256`` (hex) and ``size``; return ``dest``.

    The bytes stream to a temporary file in ``dest``'s directory (mode 0644) that is renamed onto
    ``dest`` once verified; on any error it is removed and ``dest`` is left as it was.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w+b") as f:
            state = Receiver(what, f, expected=sha256, size=size, progress=progress, failure=failure)
            _download(url, state, policy=policy, timeouts=timeouts, size=size, session=session)
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(0o644)  # mkstemp makes 0600; entries are plain readable files whatever the umask
        move_file(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def fetch_bytes(
    url: str,
    what: str,
    *,
    failure: Failure = Failure(),
    limit: int = _MAX_SMALL_BODY,
    policy: RetryPolicy = DEFAULT_POLICY,
    timeouts: Timeouts = Timeouts(),
    session: requests.Session | None = None,
) -> bytes:
    """The body at ``url`` when no digest pins it yet (a signed ``InRelease``), at most ``limit`` bytes;
    retried and bounded like :func:`fetch_file`. The caller checks the bytes (e.g. a signature)."""
    import io

    buf = io.BytesIO()
    state = Receiver(what, buf, limit=limit, failure=failure)
    _download(url, state, policy=policy, timeouts=timeouts, size=None, session=session)
    return buf.getvalue()
