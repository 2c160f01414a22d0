"""One retry policy for every network call: which failures are worth another try, how long to wait
between tries, and when to stop.

Transient: a connection that could not be opened or dropped, a read timeout, ``408``, ``429`` and the
``5xx`` answers except ``501`` and ``505`` (those say the server will never do it). Everything else,
in particular every other ``4xx``, is final on the first answer: retrying a ``404`` only delays the
error. Waits double from ``backoff`` and are capped by ``max_backoff``; a ``Retry-After`` answer
(seconds or an HTTP date, RFC 9110 §10.2.3) lengthens the wait up to that cap. The schedule has no
jitter, so a test (or a user reading a log) sees the same waits every time; one client makes at most
a handful of requests at once, so there is no herd to spread. A call stops at its deadline as well as
after its last try: no wait is started that would end past the deadline.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import requests

__all__ = [
    "DEFAULT_POLICY",
    "RetryPolicy",
    "TransientError",
    "is_transient_status",
    "send_once",
    "transient_errors",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@functools.cache
def transient_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the connection, not the request, failed.

    A function, not a constant, so that importing this module does not import ``requests`` (most of a
    warm build's start-up otherwise); ``except transient_errors():`` is evaluated only when something
    was raised, by which time whatever raised it has imported ``requests``.
    """
    import requests
    import urllib3.exceptions

    return (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.ReadTimeoutError,
        urllib3.exceptions.IncompleteRead,
        ConnectionError,
    )


#: ``501 Not Implemented`` and ``505 HTTP Version Not Supported`` will not change on a retry.
_FINAL_5XX = frozenset({501, 505})


def is_transient_status(status: int) -> bool:
    """True for ``408``, ``429`` and the ``5xx`` answers worth another try."""
    return status in (408, 429) or (500 <= status < 600 and status not in _FINAL_5XX)


class TransientError(Exception):
    """One attempt failed in a way worth another one: ``reason`` says how, for the final error;
    ``retry_after`` is the server's ``Retry-After`` value, if it sent one; ``status`` the HTTP status."""

    def __init__(self, reason: str, *, retry_after: str | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status


def send_once(
    send: Callable[[], requests.Response], *, unreachable: str, answered: Callable[[requests.Response], str]
) -> requests.Response:
    """One request under the transient-failure classification every network call shares.

    ``send`` makes the request; a connection failure raises :class:`TransientError` worded
    ``"<unreachable> (<exception class>)"``; a transient answer (:func:`is_transient_status`) is worded
    by ``answered(response)``, closed, and raised with the server's ``Retry-After``. Any other answer is returned
    (the caller decides what a ``4xx`` means); any other exception passes through.
    """
    try:
        response = send()
    except transient_errors() as e:
        raise TransientError(f"{unreachable} ({type(e).__name__})") from None
    if is_transient_status(response.status_code):
        reason = answered(response)
        response.close()
        raise TransientError(
            reason,
            retry_after=response.headers.get("Retry-After"),
            status=response.status_code,
        )
    return response


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks for (delta-seconds or an HTTP date); None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more tries after the first, waiting ``backoff * 2**n`` seconds (at most ``max_backoff``)
    before try ``n + 1``. ``sleep`` is the clock's sleep (tests pass a recorder)."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    @property
    def attempts(self) -> int:
        return max(self.retries, 0) + 1

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """The wait after failed try ``attempt`` (0-based), lengthened by ``Retry-After`` up to the cap."""
        wait: float = min(self.backoff * (2**attempt), self.max_backoff)
        asked = retry_after_seconds(retry_after)
        if asked is not None:
            wait = min(max(wait, asked), self.max_backoff)
        return wait

    def run(
        self,
        attempt: Callable[[int], T],
        *,
        deadline: float,
        exhausted: Callable[[TransientError, int], BaseException],
        what: str = "request",
    ) -> T:
        """``attempt(n)`` until it returns, raising :class:`TransientError` to ask for another try.

        ``deadline`` is a :func:`time.monotonic` value; the first try always happens. When the tries
        are used up, or the next wait would end past the deadline, ``exhausted(last error, tries made)``
        is raised. Any other exception from ``attempt`` ends the call at once.
        """
        for n in range(self.attempts):
            try:
                return attempt(n)
            except TransientError as e:
                wait = self.delay(n, e.retry_after)
                if n + 1 >= self.attempts or time.monotonic() + wait > deadline:
                    raise exhausted(e, n + 1) from None
                log.debug("%s: %s; try %d in %.2f s", what, e.reason, n + 2, wait)
                self.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


#: Four tries over about 3.5 s of waiting: enough for a restarting mirror or a load balancer's blip.
DEFAULT_POLICY = RetryPolicy()
