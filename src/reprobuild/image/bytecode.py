"""PEP 552 ``unchecked-hash`` byte-code for a target, compiled for the paths the files have in the image.

(The Debian base's standard library is compiled by the same code in ``timestamp`` mode, as Debian does:
:mod:`reprobuild.image.stdlibbytecode`.)

``co_filename`` records the path given at compile time, so each ``.py`` is compiled with its in-image
path as ``dfile`` (pip#8414 is what happens otherwise). Hash-based pycs carry a SipHash of the source
instead of an mtime, so they do not depend on when the files were written; ``unchecked`` means the
interpreter never re-reads the source to validate them. Compilation runs in fresh processes of an
interpreter of the image's ``X.Y`` (:mod:`reprobuild.image.interpreter`; never the host's running Python:
the pyc format and its cache tag are per minor version) with a fixed environment and
``PYTHONHASHSEED=0`` (where marshal does not sort them, frozenset constants follow the hash seed), each
over a run of the files in sorted order (:data:`COMPILE_RUN_BYTES`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Literal

from reprobuild.errors import ImageError
from reprobuild.image.interpreter import Interpreter
from reprobuild.image.pyenv import Distribution, InstalledFile
from reprobuild.oci.compress import default_workers
from reprobuild.wheel.record import record_hash

_COMPILER = r"""
import importlib.util, json, py_compile, sys
mode = py_compile.PycInvalidationMode[sys.argv[1]]
done = []
for src, dfile in json.load(sys.stdin):
    cfile = importlib.util.cache_from_source(src)
    try:
        py_compile.compile(src, cfile=cfile, dfile=dfile, doraise=True, invalidation_mode=mode)
    except py_compile.PyCompileError:
        continue  # not valid Python for this version (templates, py2 test data): shipped as source only
    done.append([src, cfile])
json.dump(done, sys.stdout)
"""


#: The compiler's whole environment: nothing of the host's reaches it. ``-s -S`` keep user and site
#: packages out; ``-E``/``-I`` are not used because they would drop ``PYTHONHASHSEED`` too.
COMPILER_ENV = {"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUTF8": "1", "LC_ALL": "C.UTF-8"}


#: ``py_compile.PycInvalidationMode`` names: wheels' byte-code is ``UNCHECKED_HASH``; the Debian base's
#: standard library gets ``TIMESTAMP``, what Debian's maintainer scripts write (:mod:`reprobuild.image.stdlibbytecode`).
InvalidationMode = Literal["UNCHECKED_HASH", "TIMESTAMP"]


def _compile(
    jobs: list[list[str]], interpreter: Interpreter, mode: InvalidationMode = "UNCHECKED_HASH"
) -> dict[str, Path]:
    """Compile ``[source path, in-image path]`` pairs in one fresh process; source -> pyc written.

    A ``TIMESTAMP`` pyc records the source file's mtime and size as the compiler sees them, so the caller
    sets each source's mtime to the one it has in the image first.
    """
    out = subprocess.run(
        [str(interpreter.path), "-s", "-S", "-c", _COMPILER, mode],
        input=json.dumps(sorted(jobs, key=lambda j: j[1])),
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=COMPILER_ENV,
        check=False,
    )
    if out.returncode != 0:
        raise ImageError(f"compiling byte-code with Python {interpreter.version} failed: {out.stderr.strip()[-2000:]}")
    return {src: Path(cfile) for src, cfile in json.loads(out.stdout)}


def compile_module(source: Path, image_path: str, interpreter: Interpreter) -> tuple[str, Path] | None:
    """``(in-image pyc path, pyc file)`` for one module, or None when it is not valid Python for the
    interpreter's version (the module then runs from source)."""
    cfile = _compile([[str(source), image_path]], interpreter).get(str(source))
    if cfile is None:
        return None
    return f"{posixpath.dirname(image_path)}/{cfile.relative_to(source.parent).as_posix()}", cfile


#: Sources compiled by one process, in bytes: the sorted files are cut into runs of about this size, each
#: compiled by a fresh process, the runs on :func:`~reprobuild.oci.compress.default_workers` threads. The
#: runs depend only on the files, not on the machine; and a module's pyc depends only on its source, its
#: in-image path and the interpreter, not on what else its process compiled (the project wheel's modules
#: are compiled on their own after an app change, and give the bytes a build of every wheel gives).
COMPILE_RUN_BYTES = 2 << 20


def _runs(jobs: list[list[str]], sizes: dict[str, int]) -> list[list[list[str]]]:
    """``jobs`` in in-image path order, cut into runs of about :data:`COMPILE_RUN_BYTES` of source."""
    runs: list[list[list[str]]] = [[]]
    total = 0
    for job in sorted(jobs, key=lambda j: j[1]):
        if runs[-1] and total >= COMPILE_RUN_BYTES:
            runs.append([])
            total = 0
        runs[-1].append(job)
        total += sizes[job[0]]
    return [run for run in runs if run]


def _compile_runs(jobs: list[list[str]], interpreter: Interpreter) -> dict[str, Path]:
    """:func:`_compile` of ``jobs``, run by run, the runs in parallel (see :data:`COMPILE_RUN_BYTES`)."""
    runs = _runs(jobs, {src: Path(src).stat().st_size for src, _ in jobs})
    if len(runs) <= 1:
        return _compile(jobs, interpreter)
    compiled: dict[str, Path] = {}
    with ThreadPoolExecutor(max_workers=min(default_workers(), len(runs)), thread_name_prefix="pyc") as pool:
        for done in pool.map(lambda run: _compile(run, interpreter), runs):
            compiled.update(done)
    return compiled


def compile_sources(
    sources: Sequence[tuple[str, bytes, int]], *, interpreter: Interpreter, scratch: Path, mode: InvalidationMode
) -> dict[str, tuple[str, bytes]]:
    """Compile ``(in-image path, source bytes, mtime in the image)`` triples; in-image ``.py`` -> (in-image
    pyc path, pyc bytes). Sources that are not valid Python for the interpreter's version are left out.

    Each source is written under ``scratch`` at its in-image path with its in-image mtime (what a
    ``TIMESTAMP`` pyc records); the pyc's ``co_filename`` is the in-image path.
    """
    jobs: list[list[str]] = []
    by_source: dict[str, str] = {}
    for image_path, data, mtime in sources:
        rel = image_path.lstrip("/")
        src = scratch / rel
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(data)
        os.utime(src, (mtime, mtime))
        jobs.append([str(src), "/" + rel])
        by_source[str(src)] = "/" + rel
    out: dict[str, tuple[str, bytes]] = {}
    for source, cfile in _compile(jobs, interpreter, mode).items():
        image_path = by_source[source]
        rel_pyc = cfile.relative_to(Path(source).parent).as_posix()
        out[image_path] = (f"{posixpath.dirname(image_path)}/{rel_pyc}", cfile.read_bytes())
    return out


def compile_distributions(
    dists: list[Distribution], *, interpreter: Interpreter, site_packages: str
) -> list[Distribution]:
    """Add an ``unchecked-hash`` pyc for every ``.py`` under site-packages; RECORDs list them too."""
    jobs: list[list[str]] = []
    for dist in dists:
        for f in dist.files:
            if f.image_path.endswith(".py") and f.image_path.startswith(site_packages + "/"):
                jobs.append([str(f.source), f.image_path])
    compiled = _compile_runs(jobs, interpreter)
    result = []
    for dist in dists:
        added: list[InstalledFile] = []
        for f in dist.files:
            cfile = compiled.get(str(f.source))
            if cfile is None:
                continue
            rel = cfile.relative_to(f.source.parent)
            added.append(InstalledFile(f"{posixpath.dirname(f.image_path)}/{rel.as_posix()}", cfile, False))
        if not added:
            result.append(dist)
            continue
        _extend_record(dist, added, site_packages)
        result.append(replace(dist, files=tuple(sorted((*dist.files, *added), key=lambda f: f.image_path))))
    return result


def _extend_record(dist: Distribution, added: list[InstalledFile], site_packages: str) -> None:
    record = next((f.source for f in dist.files if f.image_path.endswith(".dist-info/RECORD")), None)
    if record is None:
        return
    rows = [r for r in csv.reader(io.StringIO(record.read_text(encoding="utf-8"))) if r]
    for f in added:
        data = f.source.read_bytes()
        rows.append([posixpath.relpath(f.image_path, site_packages), record_hash(data), str(len(data))])
    last = [r for r in rows if r[0].endswith(".dist-info/RECORD")]
    rows = sorted((r for r in rows if not r[0].endswith(".dist-info/RECORD")), key=lambda r: r[0]) + last
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    record.write_text(buf.getvalue(), encoding="utf-8")
