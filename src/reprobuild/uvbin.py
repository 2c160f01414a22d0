"""Finding and running uv, the resolver, installer and build frontend repro-build drives.

Lookup order: the ``uv`` Python package's bundled binary (``uv.find_uv_bin()``), then ``$UV``, then
``PATH``. The version is recorded in locks and manifests because uv's resolution and output can change
between releases.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from reprobuild.errors import ToolError

_log = logging.getLogger(__name__)
_HINT = "install it with `pip install uv` (repro-build depends on it), or point `$UV` at a uv binary"


#: Held while uv is looked for: uv's ``find_uv_bin`` reads ``sysconfig``, whose first use fills its
#: variables without a lock, and an image build's threads look for uv at once (the locks are checked
#: on one while the project wheel's build starts on another): the second read ``EXE`` as ``None``.
_finding = threading.Lock()


def find_uv() -> str:
    """Absolute path of the uv binary to use."""
    with _finding:
        return _find_uv()


@functools.cache
def _find_uv() -> str:
    try:
        from uv import find_uv_bin

        found = find_uv_bin()
        if found and Path(found).is_file():
            return str(found)
    except (ImportError, FileNotFoundError):
        pass
    env = os.environ.get("UV")
    if env and Path(env).is_file():
        return env
    which = shutil.which("uv")
    if which:
        return which
    raise ToolError("uv was not found", hint=_HINT)


#: Held while uv's version is asked for: a thread that needs it while another asks waits for that answer.
_versioning = threading.Lock()


def uv_version() -> str:
    """The uv version string, e.g. ``0.13.9``."""
    with _versioning:
        return _uv_version()


def ask_uv_version() -> threading.Thread:
    """Start asking uv for its version on a thread (``uv --version`` takes a few tens of milliseconds), so
    that the first :func:`uv_version` finds the answer there; a failure is left for that call to report."""

    def ask() -> None:
        with contextlib.suppress(ToolError, OSError):
            uv_version()

    thread = threading.Thread(target=ask, name="repro-build-uv-version", daemon=True)
    thread.start()
    return thread


@functools.cache
def _uv_version() -> str:
    out = subprocess.run([find_uv(), "--version"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise ToolError(f"`uv --version` failed: {out.stderr.strip()}", hint=_HINT)
    parts = out.stdout.split()
    return parts[1] if len(parts) > 1 else out.stdout.strip()


def run_uv(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    what: str,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``uv ARGS``; on failure raise a :class:`ToolError` naming ``what`` with uv's own message."""
    cmd = [find_uv(), *args]
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("NO_COLOR", "1")
    start = time.monotonic()
    out = subprocess.run(cmd, cwd=cwd, env=full_env, input=stdin, capture_output=True, text=True, check=False)
    _log.debug("%s: `uv %s` exited %d in %.1fs", what, shlex.join(args), out.returncode, time.monotonic() - start)
    if out.returncode != 0:
        detail = out.stderr.strip() or out.stdout.strip()
        raise ToolError(
            f"{what} failed (uv exited {out.returncode}):\n{detail}",
            hint=f"run `uv {' '.join(args)}` to see the full output",
        )
    return out
