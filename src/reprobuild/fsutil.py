"""Atomic writes, moves and directory publishing, and canonical JSON: how repro-build puts bytes on disk.

A write goes to a temporary file in the destination directory, is fsynced, and is renamed over the
target, so a failed build never leaves a half-written artifact behind.

A move (:func:`move_file`, :func:`publish_dir`) is a rename when source and destination share a file
system. When they do not (``EXDEV``: the project on a mounted volume and the cache under ``$HOME``,
``/tmp`` on tmpfs, a bind mount in a CI container) the source is copied to a temporary name *in the
destination's directory*, every file and directory is fsynced, and that copy is renamed into place —
so the destination is still replaced in one step and never seen half-copied.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from reprobuild.errors import ReproBuildError

#: Copy buffer for cross-file-system moves (large layer blobs stream through it).
_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """Yield a binary file; on success it replaces ``path`` atomically, on error it vanishes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; set the mode explicitly so it does not depend on the umask.
        tmp_path.chmod(mode)
        tmp_path.replace(path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path, mode) as f:
        f.write(data)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def move_file(src: Path, dest: Path) -> None:
    """Move the regular file ``src`` onto ``dest`` atomically, across file systems too.

    ``dest`` is replaced in one step (readers see the old or the new file); its mode is ``src``'s.
    Raises :class:`ReproBuildError` naming both paths when the move fails for another reason.
    """
    try:
        src.replace(dest)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise _move_error(src, dest, e) from e
    try:
        mode = stat.S_IMODE(src.stat().st_mode)
        with src.open("rb") as r, atomic_writer(dest, mode) as w:
            shutil.copyfileobj(r, w, _CHUNK)
        src.unlink()
    except OSError as e:
        raise _move_error(src, dest, e) from e


def _remove_now(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def publish_dir(src: Path, dest: Path, *, remove_old: Callable[[Path], object] = _remove_now) -> None:
    """Move the directory ``src`` to ``dest``, replacing any directory there; works across file systems.

    Readers of ``dest`` see the old tree or the complete new one, never a mix: ``src`` is first renamed
    (on another file system: copied and fsynced) to a temporary name beside ``dest``; an old ``dest``
    is renamed aside and removed once the new one is in place (by ``remove_old``, e.g.
    :func:`remove_tree_in_background`). ``src`` is gone afterwards. Raises
    :class:`ReproBuildError` naming both paths when the move fails (no space, no permission).
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
        try:
            try:
                src.rename(staged)  # replaces the empty directory mkdtemp made
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                _copy_tree_synced(src, staged)
                shutil.rmtree(src)
            _swap_into_place(staged, dest, remove_old)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
    except OSError as e:
        raise _move_error(src, dest, e) from e


def remove_tree_in_background(path: Path) -> threading.Thread:
    """Remove the directory tree ``path`` on a thread of its own and return that thread.

    Not a daemon: the interpreter waits for it before exiting, so the tree is gone when the process
    ends normally (whoever starts a build removes a killed build's leftovers). Errors are ignored, as
    for any leftover.
    """
    thread = threading.Thread(
        target=shutil.rmtree, args=(path,), kwargs={"ignore_errors": True}, name=f"remove {path.name}"
    )
    thread.start()
    return thread


def _swap_into_place(new: Path, dest: Path, remove_old: Callable[[Path], object] = _remove_now) -> None:
    """Rename the directory ``new`` to ``dest`` (same file system), moving an existing ``dest`` aside first."""
    # A concurrent build may publish the same destination between our steps: retry a few times.
    for _attempt in range(3):
        aside: Path | None = None
        if dest.exists() or dest.is_symlink():
            aside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            with contextlib.suppress(FileNotFoundError):
                dest.replace(aside / "tree")
        try:
            new.rename(dest)
        except OSError as e:
            if aside is not None:
                if (aside / "tree").exists() and not dest.exists():
                    (aside / "tree").replace(dest)  # put the old tree back: nothing half-done
                shutil.rmtree(aside, ignore_errors=True)
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                continue
            raise
        if aside is not None:
            remove_old(aside)
        _fsync_dir(dest.parent)
        return
    raise OSError(errno.EEXIST, "another process keeps replacing it", str(dest))


def _copy_tree_synced(src: Path, dest: Path) -> None:
    """Copy the tree ``src`` into the existing empty directory ``dest``: files fsynced, modes kept."""
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        there = dest / here.relative_to(src)
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            s, d = here / name, there / name
            st = s.lstat()
            if stat.S_ISLNK(st.st_mode):
                d.symlink_to(s.readlink())
            elif stat.S_ISDIR(st.st_mode):
                d.mkdir()
            elif stat.S_ISREG(st.st_mode):
                with s.open("rb") as r, d.open("xb") as w:
                    shutil.copyfileobj(r, w, _CHUNK)
                    w.flush()
                    os.fsync(w.fileno())
                shutil.copystat(s, d)
            else:
                raise OSError(errno.EINVAL, "not a regular file, directory or symlink", str(s))
    # Directories last and deepest first: their modes may forbid writing, and fsync makes entries durable.
    for dirpath, _dirnames, _filenames in sorted(os.walk(dest), key=lambda w: w[0], reverse=True):
        there = Path(dirpath)
        shutil.copystat(src / there.relative_to(dest), there)
        _fsync_dir(there)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move_error(src: Path, dest: Path, e: OSError) -> ReproBuildError:
    return ReproBuildError(
        f"moving {src} to {dest} failed: {e.strerror or e}",
        hint=f"check the free space and permissions of {dest.parent}",
    )


#: Written into each output directory repro-build creates, so git (and ``git status``) ignores it all.
OUTPUT_GITIGNORE = "# Created by repro-build: build output, never committed.\n*\n"


def make_output_dir(path: Path) -> Path:
    """Create the output directory ``path`` (and its parents); return it.

    The topmost directory this call creates gets a ``.gitignore`` of ``*`` (as pytest and nox do for
    theirs), so a project without ignore rules does not see repro-build's own output as uncommitted
    changes. A directory that already existed is left as it is: its contents belong to its owner.
    """
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    if missing:
        top = missing[-1]
        if not (top / ".gitignore").exists():
            atomic_write_text(top / ".gitignore", OUTPUT_GITIGNORE)
    return path


def canonical_json_bytes(obj: Any) -> bytes:
    """Compact canonical JSON for OCI blobs: UTF-8, sorted keys, ``,``/``:`` separators."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def human_json_text(obj: Any) -> str:
    """Indented canonical JSON for files people read: sorted keys, trailing newline."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


#: ``FICLONE`` from ``<linux/fs.h>`` (``_IOW(0x94, 9, int)``): share extents copy-on-write (btrfs, XFS).
_FICLONE = 0x40049409


def clone_file(src: IO[bytes], dst: IO[bytes]) -> str:
    """Copy the whole of ``src`` into the empty ``dst``: a reflink where the file system has one, else
    an in-kernel copy (``copy_file_range``), else a read/write loop. Returns which one was used.

    Every way gives ``dst`` its own inode, so a later edit of either file never changes the other
    (a hard link would: an output edited in place would corrupt the cache it came from).
    """
    try:
        fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
        return "reflink"
    except OSError:
        pass
    try:
        while os.copy_file_range(src.fileno(), dst.fileno(), 1 << 30):
            pass
        return "copy_file_range"
    except OSError:
        src.seek(0)
        dst.seek(0)
        dst.truncate()
    shutil.copyfileobj(src, dst, 1 << 20)
    return "copy"


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if absent) for the ``with`` block; waits for it.

    The kernel drops the lock when the process dies, so a killed build never leaves a stale lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
