"""Progress reporting for long work: downloads, pulls, layers compressed, pushes, registry requests.

Library functions take a :class:`Progress` (default :data:`NO_PROGRESS`, which shows nothing) and wrap
each named unit of work in a :class:`Task`::

    with progress.task(f"pulling layer 2/5 (numpy) {digest}", size) as task:
        client.get_blob(..., progress=task)   # told each number of bytes done
        task.note("already there")          # optional: said on the task's last line

Only the CLI decides how tasks are shown (:mod:`reprobuild.cli.progress`): rich bars on a TTY, one line
when a task starts and one when it ends on any other stderr (CI logs), nothing with ``--quiet``.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType


class Task:
    """One named unit of work and its byte count; a context manager that reports its start and end.

    Calling it with ``n`` counts ``n`` more bytes done (a negative ``n`` takes back bytes of an attempt
    that is retried from its start); :meth:`restart` sets the count back to zero.
    """

    def __init__(self, progress: Progress, description: str, total: int | None) -> None:
        self.progress = progress
        self.description = description
        self.total = total
        self.done = 0
        self.result: str | None = None
        self.started = time.monotonic()
        self.seconds = 0.0
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.done += n
        self.progress.advanced(self, n)

    def restart(self) -> None:
        """Discard the bytes counted so far (a download or upload starting over)."""
        with self._lock:
            n, self.done = self.done, 0
        if n:
            self.progress.advanced(self, -n)

    def note(self, text: str) -> None:
        """Say ``text`` on the task's last line (e.g. the compressed size, or "already in the registry")."""
        self.result = text

    def __enter__(self) -> Task:
        self.started = time.monotonic()
        self.progress.started(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.seconds = time.monotonic() - self.started
        self.progress.finished(self, error)


class Progress:
    """Where tasks report. This base class shows nothing; the CLI's renderers override the three hooks."""

    def task(self, description: str, total: int | None = None) -> Task:
        """A task named ``description`` of ``total`` bytes (None: unknown); use it in a ``with``."""
        return Task(self, description, total)

    def started(self, task: Task) -> None:
        """``task`` began."""

    def advanced(self, task: Task, n: int) -> None:
        """``task`` counted ``n`` more bytes (negative after a restart)."""

    def finished(self, task: Task, error: BaseException | None) -> None:
        """``task`` ended, with ``error`` if it raised."""


#: Shows nothing: the default of every library function.
NO_PROGRESS = Progress()


def size_with_bytes(n: int) -> str:
    """``16.6 MB (16612345 bytes)``: readable, and exact for scripts and tests; ``512 bytes`` when small."""
    text = human_size(n)
    return text if text.endswith("bytes") else f"{text} ({n} bytes)"


def human_size(n: int) -> str:
    """``n`` bytes in decimal units, as rich's download column writes them (``512 bytes``, ``67.3 MB``)."""
    if abs(n) < 1000:
        return f"{n} bytes"
    value = float(n)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if abs(value) < 999.95:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} TB"
