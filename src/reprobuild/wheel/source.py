"""What goes into the build: a snapshot of the project's files, exported into a fresh directory.

Why an export and not the work tree: a build from the work tree lets untracked files (a stray
``notes.txt``, an old ``build/`` directory, ``*.egg-info``) leak into the sdist; hatchling honours
``.gitignore`` but setuptools does not. So the build always runs on a copy that holds exactly:

* in a git repository: the files git tracks under the project directory (``git ls-files``), with
  their work-tree contents. A clean tree is required, so those contents are the ``HEAD`` commit's.
  With ``allow_dirty`` the modified tracked files *and* the untracked, not ignored files are taken as
  they are (what ``git status`` shows is what gets built), and the record says the build was dirty;
* outside git (only possible with an explicit epoch): every file under the project directory except
  VCS metadata (:data:`VCS_DIRS`) and repro-build's own directories (:func:`own_dirs`: the top-level
  ``build/`` and ``dist/``, the output directory, an in-tree cache). Nothing else is left out because of
  its name (a nested ``build/``, ``venv/``, ``*.egg-info`` may be real source); what *is* left out is
  listed in :attr:`SourceTree.left_out`, which the build prints.

Export normalises what the checkout leaves to chance: modes 0644/0755 (from git's executable bit),
directories 0755, every mtime = the epoch, so neither the umask nor the checkout time reaches a
backend. ``order`` decides the file creation order (the double build varies it).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reprobuild import cachekey
from reprobuild.cache import cache_root
from reprobuild.errors import ToolError, WheelError

#: Version-control metadata: the only directories left out of a snapshot outside git, wherever they are.
VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", ".fossil"})

Kind = Literal["file", "symlink"]


@dataclass(frozen=True)
class SourceFile:
    """One file of the snapshot: a POSIX path relative to the project directory."""

    path: str
    kind: Kind
    executable: bool


@dataclass(frozen=True)
class SourceTree:
    """The files a build uses, and what the VCS says about them."""

    root: Path
    files: tuple[SourceFile, ...]  # sorted by path
    vcs: Literal["git"] | None
    commit: str | None
    dirty: bool | None  # None outside git
    dirty_paths: tuple[str, ...] = ()
    #: What was left out of a snapshot outside git, and why (``"path/: reason"``); empty in git.
    left_out: tuple[str, ...] = ()


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)
        logging.getLogger(__name__).debug("`git -C %s %s` exited %d", root, shlex.join(args), out.returncode)
        return out
    except FileNotFoundError as e:
        raise ToolError("git is not installed", hint="install git (the source snapshot is taken from git)") from e


def _git_ok(root: Path, *args: str) -> bytes:
    out = _git(root, *args)
    if out.returncode != 0:
        raise ToolError(
            f"`git {' '.join(args)}` failed in {root}: {out.stderr.decode(errors='replace').strip()}",
            hint="check that the project is a healthy git work tree",
        )
    return out.stdout


def head_commit(root: Path) -> str | None:
    """The commit checked out at ``root``; ``None`` outside a git work tree or before its first commit."""
    proc = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def snapshot(root: Path, *, allow_dirty: bool, outputs: Path | None = None) -> SourceTree:
    """The files to build from ``root`` (see the module docstring for the rules).

    repro-build's own directories — ``outputs`` (the output directory, e.g. ``dist/``), the default
    ``build/`` and ``dist/``, and the cache when it lies inside the project (``HOME`` in the tree) —
    are left out of the snapshot, and untracked files in them do not make the tree dirty. Raises
    :class:`WheelError` for a dirty tree without ``allow_dirty``.
    """
    root = root.resolve()
    skip = own_dirs(root, outputs)
    commit = head_commit(root)
    if commit is None:
        walked, left_out = _walk(root, skip)
        return SourceTree(root, walked, None, None, None, left_out=left_out)
    dirty = dirty_paths(root, skip)
    if dirty and not allow_dirty:
        shown = "\n".join(f"  {p}" for p in dirty[:10]) + ("\n  …" if len(dirty) > 10 else "")
        raise WheelError(
            f"the work tree of {root} has uncommitted changes, so the build would not match any commit:\n{shown}",
            hint="commit or discard them, or pass `--allow-dirty` (the build record then says `dirty: true`)",
        )
    files: dict[str, SourceFile] = {}
    for entry in _git_ok(root, "ls-files", "-s", "-z").split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        path = raw_path.decode("utf-8", errors="surrogateescape")
        mode = meta.split(b" ", 1)[0]
        if mode == b"160000":
            raise WheelError(
                f"{root}: {path!r} is a git submodule, which the source export does not follow",
                hint="vendor the submodule's files, or build from a checkout that includes them",
            )
        local = root / path
        if not local.is_symlink() and not local.exists():
            continue  # deleted in the work tree (only possible when dirty is allowed)
        files[path] = _entry(root, path, git_executable=mode == b"100755")
    if allow_dirty:
        for raw in _git_ok(root, "ls-files", "-z", "--others", "--exclude-standard").split(b"\0"):
            path = raw.decode("utf-8", errors="surrogateescape")
            if path and not _under(path, skip):
                files[path] = _entry(root, path, git_executable=None)
    if (root / "pyproject.toml").is_file() and "pyproject.toml" not in files:
        raise WheelError(
            f"{root}/pyproject.toml is not tracked by git, so the build cannot include it",
            hint="`git add pyproject.toml` and commit",
        )
    return SourceTree(root, tuple(files[p] for p in sorted(files)), "git", commit, bool(dirty), dirty)


def own_dirs(root: Path, outputs: Path | None = None) -> tuple[str, ...]:
    """repro-build's own directories inside ``root``, as POSIX paths relative to it (see :func:`snapshot`)."""
    # The cache key's directory too: with HOME inside the tree (reprotest's `home` variation) the key
    # that seals cache entries is written there on first use.
    candidates = [root / "build", root / "dist", cache_root(), cachekey.key_path().parent]
    if outputs is not None:
        candidates.append(outputs)
    prefixes = {p for p in (_relative_prefix(root, c) for c in candidates) if p is not None}
    return tuple(sorted(prefixes))


def _relative_prefix(root: Path, path: Path) -> str | None:
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        return None
    return None if rel == Path() else rel.as_posix()


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def dirty_paths(root: Path, skip: tuple[str, ...]) -> tuple[str, ...]:
    """``git status`` entries under ``root`` (relative to it), minus untracked files under ``skip``."""
    prefix = _git_ok(root, "rev-parse", "--show-prefix").decode().strip()
    status = _git_ok(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
    out: list[str] = []
    entries = iter(status.split(b"\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:].decode("utf-8", errors="replace")
        if code[:1] in (b"R", b"C"):
            next(entries, None)  # renames and copies carry the original path as the next field
        # porcelain paths are relative to the repository root; make them relative to the project.
        path = path.removeprefix(prefix)
        if code == b"??" and _under(path, skip):
            continue
        out.append(path)
    return tuple(sorted(out))


def _entry(root: Path, path: str, git_executable: bool | None) -> SourceFile:
    local = root / path
    if local.is_symlink():
        return SourceFile(path, "symlink", False)
    executable = bool(local.stat().st_mode & 0o111) if git_executable is None else git_executable
    return SourceFile(path, "file", executable)


def _walk(root: Path, skip: tuple[str, ...]) -> tuple[tuple[SourceFile, ...], tuple[str, ...]]:
    """Every file under ``root`` but VCS metadata and repro-build's own directories ``skip``; and what was
    left out."""
    out: list[SourceFile] = []
    left_out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        keep = []
        for d in sorted(dirnames):
            rel = (Path(dirpath) / d).relative_to(root).as_posix()
            if d in VCS_DIRS:
                left_out.append(f"{rel}/: version-control metadata")
            elif _under(rel, skip):
                left_out.append(f"{rel}/: repro-build's own directory (output or cache)")
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            out.append(_entry(root, rel, git_executable=None))
    return tuple(sorted(out, key=lambda f: f.path)), tuple(sorted(left_out))


def export(tree: SourceTree, dest: Path, *, epoch_seconds: int, reverse: bool = False) -> None:
    """Copy the snapshot into the empty or missing directory ``dest``.

    Files are created in sorted order, or reverse-sorted when ``reverse`` (directory listing order
    then differs on file systems that list in creation order). Modes and mtimes are set explicitly,
    so the caller's umask and clock do not matter.
    """
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)
    made: set[Path] = {dest}
    files = reversed(tree.files) if reverse else iter(tree.files)
    for f in files:
        target = dest / f.path
        for parent in reversed(target.relative_to(dest).parents[:-1]):
            d = dest / parent
            if d not in made:
                d.mkdir(exist_ok=True)
                d.chmod(0o755)
                made.add(d)
        src = tree.root / f.path
        if f.kind == "symlink":
            target.symlink_to(src.readlink())
            os.utime(target, (epoch_seconds, epoch_seconds), follow_symlinks=False)
            continue
        shutil.copyfile(src, target)
        target.chmod(0o755 if f.executable else 0o644)
        os.utime(target, (epoch_seconds, epoch_seconds))
    for d in sorted(made, reverse=True):
        os.utime(d, (epoch_seconds, epoch_seconds))
