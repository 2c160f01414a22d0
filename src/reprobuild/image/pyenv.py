"""Installing wheels into a staging tree laid out as the image's site-packages, and who owns each file.

``uv pip install --target`` runs offline from verified wheel files, with no cache (uv unpacks each wheel
into a temporary cache of its own and removes it when done) and no installer metadata
(``INSTALLER``/``REQUESTED``/``direct_url.json`` would record host paths). Files are hard-linked from that
temporary cache rather than copied: the same bytes and modes, written once instead of twice (torch's
700 MB of files), and uv falls back to copying where it cannot link. Console
scripts come out with the *host* interpreter in their shebang; they are rewritten to the image's
interpreter and their RECORD lines updated, as pip does at install time. Files are grouped by the
distribution whose ``RECORD`` lists them, which is what lets each large wheel get a layer of its own.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_name

from reprobuild.config import Target
from reprobuild.errors import WheelError
from reprobuild.image import uvinterpreter
from reprobuild.image.wheels import WheelPin
from reprobuild.uvbin import run_uv
from reprobuild.wheel.record import record_hash

_SHEBANG_RE = re.compile(rb"^#!\S*python[0-9.]*(?P<rest>[^\n]*)\n")


@dataclass(frozen=True)
class ImagePaths:
    """Where Python lives in the image (found by inspecting the base)."""

    interpreter: str  # e.g. /usr/bin/python3.11
    site_packages: str  # e.g. /usr/local/lib/python3.11/dist-packages
    bin_dir: str = "/usr/local/bin"


@dataclass(frozen=True)
class InstalledFile:
    """One file of the staging tree and where it goes in the image."""

    image_path: str  # absolute, POSIX
    source: Path
    executable: bool


@dataclass(frozen=True)
class Distribution:
    """An installed distribution and its files."""

    name: str
    version: str
    wheel: WheelPin | None
    files: tuple[InstalledFile, ...]

    @property
    def installed_size(self) -> int:
        return sum(f.source.stat().st_size for f in self.files)


def install_wheels(
    wheels: Sequence[tuple[WheelPin, Path]],
    target: Target,
    staging: Path,
    *,
    what: str,
    python: Path | None = None,
    interpreter_record: bool = True,
) -> None:
    """Install the given verified wheel files into ``staging`` (a fresh directory) for ``target``.

    ``python``: the interpreter uv runs to learn about the host's Python, given so that uv does not search
    ``PATH`` for one (behind a version manager's shim that search costs a few tenths of a second a run).
    What is installed follows ``--target``, ``--python-version`` and ``--python-platform``, not this
    interpreter. ``interpreter_record``: uv may take what it learnt about ``python`` from the sealed
    record of an earlier install (image/uvinterpreter.py); a build that reads no sealed entry (``verify``'s
    rebuild) passes False and uv asks the interpreter."""
    if not wheels:
        staging.mkdir(parents=True, exist_ok=True)
        return
    requirements = staging.parent / f".{staging.name}.requirements.txt"
    lines = [f"{path} --hash=sha256:{pin.sha256}\n" for pin, path in wheels]
    requirements.write_text("".join(lines), encoding="utf-8")
    env = dict(os.environ)
    env.update({"UV_NO_INSTALLER_METADATA": "1", "UV_LINK_MODE": "hardlink", "UV_COMPILE_BYTECODE": "0"})
    # A cache of its own, removed afterwards (what `--no-cache` does), holding at first only what uv
    # learnt about ``python`` in an earlier install, sealed (image/uvinterpreter.py).
    uv_cache = Path(tempfile.mkdtemp(prefix=f".{staging.name}.uv-cache-", dir=staging.parent))
    restored = uvinterpreter.restore(python, uv_cache) if python is not None and interpreter_record else {}
    try:
        run_uv(
            [
                "pip",
                "install",
                "--quiet",
                "--offline",
                "--no-index",
                "--no-deps",
                "--cache-dir",
                str(uv_cache),
                "--require-hashes",
                "--only-binary",
                ":all:",
                *(["--python", str(python)] if python is not None else []),
                *target.uv_platform_args,
                "--target",
                str(staging),
                "-r",
                str(requirements),
            ],
            env=env,
            what=what,
        )
        if python is not None and interpreter_record:
            uvinterpreter.remember(python, uv_cache, restored)
    finally:
        requirements.unlink(missing_ok=True)
        shutil.rmtree(uv_cache, ignore_errors=True)
    # uv's inter-process lock for the target directory; it is not part of any distribution.
    (staging / ".lock").unlink(missing_ok=True)


def _rewrite_scripts(staging: Path, rows: list[list[str]], paths: ImagePaths) -> list[list[str]]:
    """Point console-script shebangs at the image interpreter; return the RECORD rows updated."""
    out: list[list[str]] = []
    for row in rows:
        rel = row[0]
        new_row = row
        if rel.startswith("bin/"):
            file = staging / rel
            data = file.read_bytes()
            m = _SHEBANG_RE.match(data)
            if m:
                data = b"#!" + paths.interpreter.encode() + m.group("rest") + b"\n" + data[m.end() :]
                file.write_bytes(data)
                new_row = [rel, record_hash(data), str(len(data))]
        out.append(new_row)
    return out


def _image_path(rel: str, paths: ImagePaths) -> str:
    if rel.startswith("bin/"):
        return posixpath.join(paths.bin_dir, rel[len("bin/") :])
    return posixpath.normpath(posixpath.join(paths.site_packages, rel))


def _record_path(rel: str, paths: ImagePaths) -> str:
    """A RECORD path as installed: relative to site-packages (``../../../bin/x`` for scripts)."""
    if rel.startswith("bin/"):
        return posixpath.relpath(_image_path(rel, paths), paths.site_packages)
    return rel


def collect_distributions(
    staging: Path, paths: ImagePaths, pins: dict[str, WheelPin] | None = None
) -> list[Distribution]:
    """Group every file under ``staging`` by the distribution whose RECORD lists it.

    RECORDs are rewritten to image paths and their script hashes refreshed. A file no RECORD claims is
    an error: every byte of the image must be accounted for.
    """
    pins = pins or {}
    owned: dict[str, str] = {}
    dists: list[tuple[str, str, list[str]]] = []
    for dist_info in sorted(staging.glob("*.dist-info")):
        stem = dist_info.name[: -len(".dist-info")]
        name, _, version = stem.partition("-")
        record = dist_info / "RECORD"
        if not record.is_file():
            raise WheelError(f"{dist_info.name} has no RECORD", hint="the wheel is malformed; re-lock")
        rows = [r for r in csv.reader(io.StringIO(record.read_text(encoding="utf-8"))) if r]
        rows = _rewrite_scripts(staging, rows, paths)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        files: list[str] = []
        for row in rows:
            rel = row[0]
            if posixpath.isabs(rel) or ".." in PurePosixPath(rel).parts:
                raise WheelError(f"{dist_info.name}/RECORD lists a path outside the target: {rel!r}")
            if rel == f"{dist_info.name}/RECORD":
                writer.writerow([rel, "", ""])
            else:
                writer.writerow([_record_path(rel, paths), *row[1:]])
            files.append(rel)
        record.write_text(buf.getvalue(), encoding="utf-8")
        for rel in files:
            owned[rel] = stem
        dists.append((name, version, files))
    unowned = [
        p.relative_to(staging).as_posix()
        for p in sorted(staging.rglob("*"))
        if (p.is_file() or p.is_symlink()) and p.relative_to(staging).as_posix() not in owned
    ]
    if unowned:
        raise WheelError(
            f"{len(unowned)} installed file(s) belong to no distribution's RECORD, e.g. {unowned[0]!r}",
            hint="a wheel's RECORD is incomplete; this is a bug in that wheel",
        )
    result: list[Distribution] = []
    for name, version, files in dists:
        entries = []
        for rel in sorted(set(files)):
            src = staging / rel
            if not src.exists():
                continue  # RECORD may list files uv skipped (e.g. .pyc it was told not to write)
            entries.append(InstalledFile(_image_path(rel, paths), src, os.access(src, os.X_OK)))
        pin = pins.get(canonicalize_name(name))
        result.append(Distribution(canonicalize_name(name), version, pin, tuple(entries)))
    return sorted(result, key=lambda d: d.name)
