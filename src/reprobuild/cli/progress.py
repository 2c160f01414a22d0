"""How the CLI shows the library's tasks (:mod:`reprobuild.oci.progress`) on stderr.

- stderr is a TTY: rich bars, one per running task; a finished task's bar is removed and its last line
  (size, time) is printed above the bars, so no finished row stays behind as an empty bar.
- any other stderr (CI logs, pipes, files): one line when a task starts and one when it ends, with its
  size and time, and a line every :data:`HEARTBEAT_SECONDS` while a long task runs. No carriage
  returns, no escape sequences.
- ``--quiet``: nothing.

Data stays on stdout either way (``--json`` output is never mixed with progress).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from reprobuild.cli.output import safe
from reprobuild.oci.progress import NO_PROGRESS, Progress, Task, human_size, size_with_bytes

#: Seconds between "still running" lines of one task in line mode: a stalled registry or mirror shows
#: in a CI log as a task that started and says how far it got, without a line per chunk.
HEARTBEAT_SECONDS = 30.0


def _size(task: Task) -> str:
    return f" ({human_size(task.total)})" if task.total is not None else ""


def end_line(task: Task, error: BaseException | None) -> str:
    """A finished task's line: ``DESCRIPTION: done, 16.6 MB (16612345 bytes) in 1.3 s[, NOTE]``."""
    if error is not None:
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        return f"{task.description}: {reason} after {task.seconds:.1f} s"
    done = f"done, {size_with_bytes(task.done)} in {task.seconds:.1f} s"
    return f"{task.description}: {done}" + (f", {task.result}" if task.result else "")


class LineProgress(Progress):
    """One line per task start and end on ``stream`` (see the module docstring)."""

    def __init__(
        self, stream: TextIO, *, clean: Callable[[str], str] = safe, heartbeat: float = HEARTBEAT_SECONDS
    ) -> None:
        self._stream = stream
        self._clean = clean
        self._heartbeat = heartbeat
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()  # .deb downloads run on a thread pool

    def _write(self, line: str) -> None:
        with self._lock:
            self._stream.write(self._clean(line) + "\n")
            self._stream.flush()

    def started(self, task: Task) -> None:
        self._last[id(task)] = task.started
        self._write(f"{task.description}{_size(task)} ...")

    def advanced(self, task: Task, n: int) -> None:
        now = time.monotonic()
        if now - self._last.get(id(task), now) < self._heartbeat:
            return
        self._last[id(task)] = now
        of = f" of {human_size(task.total)}" if task.total is not None else ""
        self._write(f"{task.description}: {human_size(task.done)}{of} after {now - task.started:.0f} s")

    def finished(self, task: Task, error: BaseException | None) -> None:
        self._last.pop(id(task), None)
        self._write(end_line(task, error))


class RichProgress(Progress):
    """Bars on a TTY (rich); each finished task's line is printed above them."""

    def __init__(self, bars: Any, *, clean: Callable[[str], str] = safe) -> None:
        self._bars = bars
        self._clean = clean
        self._ids: dict[int, Any] = {}

    def started(self, task: Task) -> None:
        self._ids[id(task)] = self._bars.add_task(self._clean(task.description), total=task.total)

    def advanced(self, task: Task, n: int) -> None:
        task_id = self._ids.get(id(task))
        if task_id is not None:
            self._bars.advance(task_id, n)

    def finished(self, task: Task, error: BaseException | None) -> None:
        task_id = self._ids.pop(id(task), None)
        if task_id is not None:
            self._bars.remove_task(task_id)
            self._bars.refresh()  # redraw without the row now, not the last frame that still had it
        self._bars.console.print(self._clean(end_line(task, error)), markup=False, highlight=False)


@contextlib.contextmanager
def progress_for_cli(quiet: bool) -> Iterator[Progress]:
    """Bars when stderr is a TTY, lines otherwise, nothing when ``quiet``."""
    if quiet:
        yield NO_PROGRESS
        return
    if not sys.stderr.isatty():
        yield LineProgress(sys.stderr)
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeElapsedColumn, TransferSpeedColumn
    from rich.progress import Progress as Bars

    with Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bars:
        yield RichProgress(bars)
