"""Progress reporting for pulls, pushes and compression: rich bars on stderr when it is a TTY.

Library functions take a :class:`Progress` (default :data:`NO_PROGRESS`); only the CLI decides whether
to show bars (TTY and not ``--quiet``), following uv's output rules.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol


class Progress(Protocol):
    def task(self, description: str, total: int | None) -> Callable[[int], None]:
        """Start a task; the returned callable is told each number of bytes done."""
        ...


class _NoProgress:
    def task(self, description: str, total: int | None) -> Callable[[int], None]:
        return lambda n: None


NO_PROGRESS: Progress = _NoProgress()


class _RichProgress:
    def __init__(self, progress: Any) -> None:
        self._p = progress

    def task(self, description: str, total: int | None) -> Callable[[int], None]:
        task_id = self._p.add_task(description, total=total)
        return lambda n: self._p.advance(task_id, n)


@contextlib.contextmanager
def progress_for_cli(quiet: bool) -> Iterator[Progress]:
    """Rich progress bars on stderr when stderr is a TTY and not ``quiet``; otherwise nothing."""
    if quiet or not sys.stderr.isatty():
        yield NO_PROGRESS
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as p:
        yield _RichProgress(p)
