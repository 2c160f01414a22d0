"""Atomic file writes and canonical JSON: the only way repro-build puts bytes on disk.

A write goes to a temporary file in the destination directory, is fsynced, and is renamed over the
target, so a failed build never leaves a half-written artifact behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


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
