"""Output rules (uv's STYLE.md): data to stdout, everything else to stderr, readable without colour.

``NO_COLOR`` is respected; progress is shown only when stderr is a TTY and ``--quiet`` is not given.
"""

from __future__ import annotations

import os
import sys


def _color() -> bool:
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


def print_error(message: str, hint: str | None) -> None:
    """``error: …``, a blank line, ``hint: …`` on stderr."""
    red, bold, reset = ("\x1b[31m", "\x1b[1m", "\x1b[0m") if _color() else ("", "", "")
    print(f"{red}{bold}error{reset}: {message}", file=sys.stderr)
    if hint:
        print(f"\n{bold}hint{reset}: {hint}", file=sys.stderr)


def log(message: str, *, quiet: bool = False) -> None:
    """A progress or status line on stderr (suppressed by ``--quiet``)."""
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def data(text: str) -> None:
    """Data for scripts on stdout."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
