"""Where a project's locks live: ``repro-locks/`` (:data:`LOCKS_DIR`), the one definition every command uses.

The directory is committed and visible, and its name is not a Python identifier, so no build backend's
package discovery takes it for a package: setuptools' flat-layout finder
(``FlatLayoutPackageFinder._looks_like_package``) accepts only identifiers (or ``*-stubs``), so
``repro-locks`` is never listed next to the project's package; pdm-backend finds only directories with
an ``__init__.py``; hatchling, flit-core and poetry-core look for the package named after the project;
meson-python and scikit-build-core install only what their build files name.

Before, the locks lived in ``locks/`` (:data:`OLD_LOCKS_DIR`), a valid identifier, which setuptools'
auto-discovery refused ("Multiple top-level packages discovered in a flat-layout: ['locks', …]").
A project that still has only ``locks/`` is read from there with a warning; ``repro-build lock`` moves
repro-build's own files from ``locks/`` to ``repro-locks/`` (:func:`migrate`) and says what to commit.
Both are never read: when ``repro-locks/`` exists it is the only one, and leftover locks in ``locks/``
are named in a warning.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

#: The locks directory, relative to the project root.
LOCKS_DIR = "repro-locks"
#: Where the locks lived before (read with a warning until ``repro-build lock`` moves them).
OLD_LOCKS_DIR = "locks"
#: The build lock and the inputs record, in the locks directory.
BUILD_LOCK = "build.txt"
INPUTS_FILE = "inputs.json"
#: The files that mark ``locks/`` as repro-build's (a project may have its own ``locks`` package).
_MARKERS = (INPUTS_FILE, BUILD_LOCK)
#: repro-build's files in a locks directory beyond the target locks ``inputs.json`` names.
_OWN_PATTERNS = ("inputs.json", "build.txt", "repro-build.txt", "base-*.json")

_log = logging.getLogger(__name__)
_warned: set[tuple[str, str]] = set()


def _has_old_locks(root: Path) -> bool:
    return any((root / OLD_LOCKS_DIR / name).is_file() for name in _MARKERS)


def _warn_once(root: Path, kind: str, message: str) -> None:
    key = (str(root), kind)
    if key not in _warned:
        _warned.add(key)
        _log.warning("warning: %s", message)


#: The hint for a missing or stale lock.
RELOCK_HINT = f"run `repro-build lock` and commit `{LOCKS_DIR}/`"


def migrate_hint() -> str:
    return f"run `repro-build lock` once: it moves them to `{LOCKS_DIR}/` and says what to commit"


def locks_dir(root: Path) -> Path:
    """The directory to read ``root``'s locks from: ``repro-locks/``, or ``locks/`` (with a warning)
    when only that holds repro-build's locks."""
    new = root / LOCKS_DIR
    if new.is_dir():
        if _has_old_locks(root):
            _warn_once(
                root,
                "leftover",
                f"{OLD_LOCKS_DIR}/ still holds repro-build locks, which are no longer read (the locks are in "
                f"{LOCKS_DIR}/); delete them: `git rm -r {OLD_LOCKS_DIR}`",
            )
        return new
    if _has_old_locks(root):
        _warn_once(
            root,
            "old",
            f"reading the locks from {OLD_LOCKS_DIR}/, where repro-build kept them before; they now live in "
            f"{LOCKS_DIR}/ (setuptools' package discovery takes `{OLD_LOCKS_DIR}` for a package); " + migrate_hint(),
        )
        return root / OLD_LOCKS_DIR
    return new


def write_dir(root: Path) -> Path:
    """Where ``repro-build lock`` writes: always ``repro-locks/``."""
    return root / LOCKS_DIR


@dataclass(frozen=True)
class Migration:
    """What :func:`migrate` moved from ``locks/`` to ``repro-locks/``, and what it left there."""

    moved: tuple[str, ...]
    left: tuple[str, ...]

    def messages(self) -> list[str]:
        if not self.moved:
            return []
        out = [
            f"moved {len(self.moved)} lock file(s) from {OLD_LOCKS_DIR}/ to {LOCKS_DIR}/ "
            f"(setuptools' package discovery takes `{OLD_LOCKS_DIR}` for a package): {', '.join(self.moved)}; "
            f"commit the move with `git add -A {OLD_LOCKS_DIR} {LOCKS_DIR}`"
        ]
        if self.left:
            out.append(
                f"left in {OLD_LOCKS_DIR}/ (not repro-build's): {', '.join(self.left)}",
            )
        return out


def _own_files(old: Path) -> set[str]:
    """repro-build's files in ``old``: the fixed names, ``base-*.json``, and the target locks that
    ``inputs.json`` records."""
    names = {p.name for p in old.iterdir() if p.is_file() and any(fnmatch.fnmatch(p.name, g) for g in _OWN_PATTERNS)}
    try:
        recorded = json.loads((old / "inputs.json").read_text(encoding="utf-8")).get("locks", {})
    except (OSError, ValueError, AttributeError):
        recorded = {}
    if isinstance(recorded, dict):
        names |= {n for n in recorded if isinstance(n, str) and "/" not in n and (old / n).is_file()}
    return names


def migrate(root: Path) -> Migration:
    """Move repro-build's lock files from ``locks/`` to ``repro-locks/`` when only ``locks/`` has them.

    Each file is renamed (same directory tree, so atomic); ``locks/`` is removed once empty. Files that
    are not repro-build's stay where they are and are named. Nothing happens when ``repro-locks/``
    already exists (then :func:`locks_dir` warns about leftovers instead).
    """
    new, old = root / LOCKS_DIR, root / OLD_LOCKS_DIR
    if new.exists() or not _has_old_locks(root):
        return Migration((), ())
    own = sorted(_own_files(old))
    new.mkdir()
    for name in own:
        (old / name).replace(new / name)
    left = sorted(p.name for p in old.iterdir() if not p.name.startswith(".lock-"))
    if not left:
        for stale in old.iterdir():  # temporary directories of an interrupted lock
            shutil.rmtree(stale)
        old.rmdir()
    _warned.discard((str(root), "old"))
    return Migration(tuple(own), tuple(left))
