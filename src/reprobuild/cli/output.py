"""Output rules (as uv's CLI does): data to stdout, everything else to stderr, readable without colour.

``NO_COLOR`` is respected; progress is shown only when stderr is a TTY and ``--quiet`` is not given.
"""

from __future__ import annotations

import os
import re
import sys

from reprobuild.urls import redact_text

#: C0 controls but newline and tab, DEL, and C1 controls (ESC sequences, the 8-bit CSI).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _color() -> bool:
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


def safe(text: str) -> str:
    """``text`` fit for a terminal: credentials redacted (:func:`reprobuild.urls.redact_text`) and
    control characters other than newline and tab escaped, so names from layers, histories or
    registries cannot move the cursor, retitle the window or hide what follows."""
    return _CONTROL_RE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), redact_text(text))


def print_error(message: str, hint: str | None) -> None:
    """``error: …``, a blank line, ``hint: …`` on stderr."""
    red, bold, reset = ("\x1b[31m", "\x1b[1m", "\x1b[0m") if _color() else ("", "", "")
    print(f"{red}{bold}error{reset}: {safe(message)}", file=sys.stderr)
    if hint:
        print(f"\n{bold}hint{reset}: {safe(hint)}", file=sys.stderr)


def log(message: str, *, quiet: bool = False) -> None:
    """A progress or status line on stderr (suppressed by ``--quiet``)."""
    if not quiet:
        print(safe(message), file=sys.stderr, flush=True)


def data(text: str) -> None:
    """Data for scripts on stdout (control characters escaped; JSON is unchanged, it escapes them itself)."""
    text = _CONTROL_RE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
