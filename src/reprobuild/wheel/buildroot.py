"""The fixed build root: the backend runs at the same absolute path for a project, on every machine.

Compilers and backends write the directory they run in into outputs: DWARF ``DW_AT_comp_dir``,
``__FILE__``, and generated files that ``-ffile-prefix-map`` never sees (meson-python's
``_build_config.py`` holds the build and source directories). A random temporary directory, or the
checkout's location, would then reach the wheel. So every build of a project runs under
``/tmp/repro-build/<normalised project name>/`` (:data:`BASE`, not ``$TMPDIR``, which differs between
hosts), whatever the checkout's path and the caller's temporary directory.

One build at a time uses a project's root: an exclusive ``flock`` on ``<root>.lock`` serialises
concurrent builds of the same project (a second one waits). A root left behind by a killed build is
removed before use. ``BASE`` is made like ``/tmp`` itself (mode 1777), so each user's builds can create
their own project directories; a project directory owned by another user is refused with a hint.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from packaging.utils import canonicalize_name

from reprobuild.errors import WheelError

#: Where every project's build root lives (fixed: it is part of what reaches the artifacts).
BASE = Path("/tmp/repro-build")


def build_root_path(project_name: str) -> Path:
    """The fixed build root of ``project_name``."""
    return BASE / canonicalize_name(project_name)


def _make_base() -> None:
    try:
        BASE.mkdir(mode=0o1777, exist_ok=True)
        if BASE.stat().st_uid == os.getuid():
            BASE.chmod(0o1777)
    except OSError as e:
        raise WheelError(f"cannot create the build directory {BASE}: {e}", hint=f"make {BASE} writable") from e


@contextlib.contextmanager
def fixed_build_root(project_name: str) -> Iterator[Path]:
    """Hold the project's fixed build root, empty, for one build; removed afterwards."""
    _make_base()
    root = build_root_path(project_name)
    lock_path = root.with_name(root.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise WheelError(
            f"cannot open {lock_path}: {e}",
            hint=f"another user's build of this project holds it: remove {lock_path} or build as that user",
        ) from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if root.exists() or root.is_symlink():
            _remove(root)
        root.mkdir(mode=0o755)
        try:
            yield root
        finally:
            _remove(root)
    finally:
        os.close(fd)


def _remove(root: Path) -> None:
    try:
        if root.is_symlink() or not root.is_dir():
            root.unlink()
        else:
            shutil.rmtree(root)
    except OSError as e:
        raise WheelError(
            f"cannot clear the build directory {root}: {e}",
            hint=f"another user's build of this project may own it; remove {root}",
        ) from e
