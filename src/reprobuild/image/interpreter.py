"""The interpreter that writes an image's byte-code: one of the image's exact ``X.Y``, found by uv.

A ``.pyc`` is only read by the minor version that wrote it (magic number and cache tag are per ``X.Y``),
so the running interpreter of repro-build, whatever the host has, is never used. ``uv python find``
locates one, with the discovery ``uv build --python X.Y`` uses to build the project wheel (uv-managed
installations, ``python3.Y`` on ``PATH``); nothing is downloaded. The image's own version ``X.Y.Z`` is
asked for first, then any ``X.Y``: the compiler's output can change between patch releases (measured:
CPython 3.11.2 and 3.11.7 write different bytes for 11 of 1,682 modules of a typical environment), so
the image's exact version gives the bytes the image's interpreter would write itself, on every host
that has it. ``REPRO_BUILD_BYTECODE_PYTHON``, when set, is the request instead (a path or a version), and what it names
must still be ``X.Y``.

The full version used is recorded in the build manifest, so a rebuild with another patch release shows
why a ``.pyc`` differs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from reprobuild.errors import ToolError
from reprobuild.uvbin import find_uv

_PROBE = (
    "import json, sys; print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3], "
    "'implementation': sys.implementation.name, 'cache_tag': sys.implementation.cache_tag}))"
)


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter that compiles byte-code for one ``X.Y``."""

    path: Path
    version: str  # X.Y.Z
    implementation: str  # "cpython"
    cache_tag: str  # "cpython-311"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    def to_dict(self) -> dict[str, str]:
        """What the manifest records (never the host path)."""
        return {"cache_tag": self.cache_tag, "implementation": self.implementation, "version": self.version}


def _hint(python: str) -> str:
    minor = minor_of(python)
    return (
        f"install one with `uv python install {python}` (the image's own version; any {minor} works) where uv "
        f"can download, put a `python{minor}` on `PATH`, or set `{BYTECODE_PYTHON_ENV}` to the path of a "
        f"Python {minor} interpreter"
    )


#: The variable that names the byte-code compiler explicitly. Not ``UV_PYTHON``: tools set that for their
#: own environments (nox points it at its session's virtualenv), and the image's bytes would follow.
BYTECODE_PYTHON_ENV = "REPRO_BUILD_BYTECODE_PYTHON"


def minor_of(python: str) -> str:
    """``X.Y`` of ``X.Y[.Z]``."""
    return ".".join(python.split(".")[:2])


def find_interpreter(python: str) -> Interpreter:
    """An interpreter of ``python``'s ``X.Y``: ``python`` itself (``X.Y.Z``) if uv finds it, else any ``X.Y``."""
    return _find(python, os.environ.get(BYTECODE_PYTHON_ENV) or None)


def _uv_find(request: str) -> tuple[str | None, str]:
    """(path, uv's last stderr line) for one ``uv python find`` request."""
    env = {**os.environ, "NO_COLOR": "1", "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("UV_PYTHON", None)
    try:
        out = subprocess.run(
            [find_uv(), "python", "find", "--no-project", "--no-python-downloads", request],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    except OSError as e:
        return None, str(e)
    lines = out.stdout.strip().splitlines()
    detail = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "no output"
    return (lines[-1] if out.returncode == 0 and lines else None), detail


def _probe(program: str) -> subprocess.CompletedProcess[str]:
    """Run :data:`_PROBE` with ``program``, isolated and without ``site`` (it needs neither)."""
    return subprocess.run(
        [program, "-I", "-S", "-c", _PROBE], capture_output=True, text=True, env={"PATH": os.defpath}, check=False
    )


@functools.cache
def _find(python: str, request: str | None) -> Interpreter:
    minor = minor_of(python)
    if request is None:
        known = _recall(python)
        if known is not None:
            return known
    asked = [request] if request else list(dict.fromkeys([python, minor]))
    path, detail = None, ""
    for one in asked:
        path, detail = _uv_find(one)
        if path:
            break
    if not path:
        where = f"`{BYTECODE_PYTHON_ENV}={request}`" if request else " or ".join(f"Python {a}" for a in asked)
        raise ToolError(
            f"no Python {minor} interpreter to compile the image's byte-code (uv looked for {where}: {detail})",
            hint=_hint(python),
        )
    probe = _probe(path)
    if probe.returncode != 0:
        raise ToolError(
            f"the Python interpreter {path} does not run: {probe.stderr.strip()[-500:]}", hint=_hint(python)
        )
    facts = json.loads(probe.stdout)
    found = Interpreter(Path(path), facts["version"], facts["implementation"], facts["cache_tag"])
    if request is None and found.version == python and found.implementation == "cpython":
        _remember(python, found)
    if found.minor != minor or found.implementation != "cpython":
        raise ToolError(
            f"the image's byte-code needs CPython {minor}, but {f'`{BYTECODE_PYTHON_ENV}`' if request else 'uv'} "
            f"found {found.implementation} {found.version} at {path}",
            hint=_hint(python),
        )
    return found


# ------------------------------------------------------------------ remembered between runs

#: ``uv python find`` probes every interpreter it can see, which takes from a fraction of a second to
#: seconds; what it found for an exact ``X.Y.Z`` is remembered in ``<cache>/interpreters/<X.Y.Z>.json``.
#: The entry names a program to run, so it is sealed with the cache key (:mod:`reprobuild.cachekey`),
#: and it is used only when the program still reports exactly that CPython version: any CPython of
#: that version writes the same byte-code, which is what uv's first request would have given.
_EXACT = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\Z")


def _entry(python: str) -> Path | None:
    from reprobuild.cache import cache_root

    return cache_root() / "interpreters" / f"{python}.json" if _EXACT.match(python) else None


def _remember(python: str, found: Interpreter) -> None:
    from reprobuild.cachekey import write_sealed

    path = _entry(python)
    if path is None:
        return
    with contextlib.suppress(OSError):  # remembering only saves time
        write_sealed(path, {"path": str(found.path), "python": python})


def _recall(python: str) -> Interpreter | None:
    from reprobuild.cachekey import read_sealed

    entry = _entry(python)
    if entry is None:
        return None
    try:
        payload = read_sealed(entry, python=python)
        if payload is None:
            return None
        program = Path(str(payload["path"]))
        if not program.is_absolute():
            return None
        probe = _probe(str(program))
        facts = json.loads(probe.stdout) if probe.returncode == 0 else {}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if facts.get("version") != python or facts.get("implementation") != "cpython":
        return None
    return Interpreter(program, python, "cpython", str(facts["cache_tag"]))
