"""Canonical tar layers (docs/explanation/determinism.md: mtimes, order, owners, modes, PAX headers).

Rules, each so that the bytes depend only on the logical content:

- Entries are sorted by their path's UTF-8 components (parents before children, siblings grouped),
  never by file-system or insertion order. Every directory implied by a path gets an explicit entry.
- uid/gid 0 and empty uname/gname; mtime = the epoch (or, with ``preserve_metadata``, the entry's
  own mtime clamped to never be newer than the epoch).
- Modes are normalised: directories 0755, files 0755 if any execute bit is set else 0644, symlinks
  0777 (ko, Jib, nix2container). ``preserve_metadata=True`` keeps mode bits and uid/gid instead, for
  rootfs tars whose setuid bits and group ownerships are part of their meaning.
- Hardlinks stay links: the first path of a link group in sorted order carries the content, later
  ones are ``LNKTYPE`` entries naming it.
- No device nodes, FIFOs or sockets from user input (rejected from trees, dropped from rootfs tars).
- Tar format: Python's :mod:`tarfile` with ``PAX_FORMAT``. A header is plain USTAR unless a path or
  link target is longer than 100 bytes or not ASCII; then one PAX extended header carries only
  ``path``/``linkpath``. Integer mtimes and empty names mean no ``mtime``/``uname``/``atime``/``ctime``
  PAX records are ever written. The archive ends with tarfile's two zero blocks and 10240-byte record padding.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from reprobuild.errors import OCIError

EntryKind = Literal["file", "dir", "symlink", "hardlink"]

#: Modes after normalisation (see the module docstring); the same whatever the umask.
DIR_MODE = 0o755
FILE_MODE = 0o644
EXEC_MODE = 0o755
SYMLINK_MODE = 0o777


@dataclass(frozen=True)
class TarSlice:
    """File content stored inside an uncompressed tar at ``offset`` (streamed, never loaded whole)."""

    archive: Path
    offset: int
    size: int


Content = bytes | Path | TarSlice


def normalize_path(path: str, *, origin: str = "layer entry") -> str:
    """In-image path without leading ``/`` or ``./``; rejects ``..``, NUL and the root itself."""
    if "\0" in path:
        raise OCIError(f"{origin}: path {path!r} contains a NUL byte")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise OCIError(f"{origin}: path {path!r} contains `..`", hint="give paths inside the image")
    if not parts:
        raise OCIError(f"{origin}: path {path!r} names the image root", hint="name a file or directory")
    return "/".join(parts)


@dataclass(frozen=True)
class LayerEntry:
    """One entry of a layer: a file (content), a directory, a symlink or a hardlink (``target``).

    ``path`` is the in-image path (normalised, no leading ``/``). ``mode`` holds permission bits;
    ``uid``/``gid``/``mtime`` are used only when the layer is written with ``preserve_metadata``.
    """

    path: str
    kind: EntryKind
    mode: int = FILE_MODE
    content: Content | None = None
    target: str | None = None
    uid: int = 0
    gid: int = 0
    mtime: int | None = None

    @classmethod
    def file(
        cls, path: str, data: bytes | None = None, *, source: Path | None = None, mode: int = FILE_MODE
    ) -> LayerEntry:
        """A regular file from ``data`` or from the file at ``source`` (read when the layer is written)."""
        if (data is None) == (source is None):
            raise OCIError(f"layer entry {path!r}: give exactly one of data= or source=")
        return cls(normalize_path(path), "file", mode, data if data is not None else source)

    @classmethod
    def directory(cls, path: str, *, mode: int = DIR_MODE) -> LayerEntry:
        return cls(normalize_path(path), "dir", mode)

    @classmethod
    def symlink(cls, path: str, target: str) -> LayerEntry:
        if not target or "\0" in target:
            raise OCIError(f"layer entry {path!r}: symlink target {target!r} is empty or has a NUL byte")
        return cls(normalize_path(path), "symlink", SYMLINK_MODE, target=target)

    @classmethod
    def hardlink(cls, path: str, target: str) -> LayerEntry:
        """A hardlink to the file entry ``target`` (an in-image path) of the same layer."""
        return cls(normalize_path(path), "hardlink", FILE_MODE, target=normalize_path(target))

    def with_prefix(self, prefix: str) -> LayerEntry:
        """The same entry under ``prefix`` (e.g. ``/app``); hardlink targets move with it."""
        if prefix.strip("/") in ("", "."):
            return self
        base = normalize_path(prefix, origin="destination prefix")
        target = f"{base}/{self.target}" if self.kind == "hardlink" and self.target else self.target
        return replace(self, path=f"{base}/{self.path}", target=target)

    @property
    def size(self) -> int:
        c = self.content
        if self.kind != "file" or c is None:
            return 0
        if isinstance(c, bytes):
            return len(c)
        if isinstance(c, TarSlice):
            return c.size
        return c.stat().st_size


def sort_key(path: str) -> tuple[bytes, ...]:
    """Component-wise UTF-8 order: locale-independent, parents before children."""
    return tuple(p.encode("utf-8", "surrogateescape") for p in path.split("/"))


def canonical_entries(entries: Iterable[LayerEntry]) -> list[LayerEntry]:
    """Sorted entries with implied parent directories and hardlink groups in first-seen sorted order.

    Raises :class:`OCIError` on a duplicate path, a parent that is not a directory, or a hardlink to a
    path that is not a file entry of the same layer.
    """
    by_path: dict[str, LayerEntry] = {}
    for e in entries:
        if e.path in by_path:
            raise OCIError(f"layer entry {e.path!r} is given twice", hint="each path may appear once per layer")
        by_path[e.path] = e
    for path in list(by_path):
        parent = PurePosixPath(path).parent
        while str(parent) != ".":
            p = str(parent)
            existing = by_path.get(p)
            if existing is None:
                by_path[p] = LayerEntry(p, "dir", DIR_MODE)
            elif existing.kind != "dir":
                raise OCIError(f"layer entry {path!r}: its parent {p!r} is a {existing.kind}, not a directory")
            parent = parent.parent
    # Hardlink groups: resolve each link to its file and let the first path in sorted order hold it.
    groups: dict[str, list[str]] = {}
    for e in by_path.values():
        if e.kind == "hardlink":
            assert e.target is not None
            root = e.target
            seen = {e.path}
            while (t := by_path.get(root)) is not None and t.kind == "hardlink" and t.target and root not in seen:
                seen.add(root)
                root = t.target
            target = by_path.get(root)
            if target is None or target.kind != "file":
                raise OCIError(
                    f"layer entry {e.path!r} is a hardlink to {e.target!r}, which is not a file in the same layer"
                )
            groups.setdefault(root, [root]).append(e.path)
    for root, members in groups.items():
        members.sort(key=sort_key)
        first = members[0]
        source = by_path[root]
        for m in members:
            if m == first:
                by_path[m] = replace(source, path=m)
            else:
                by_path[m] = replace(source, path=m, kind="hardlink", content=None, target=first)
    return sorted(by_path.values(), key=lambda e: sort_key(e.path))


def entries_from_tree(root: Path, prefix: str = "/") -> list[LayerEntry]:
    """Entries for every file, directory and symlink under ``root``, placed under ``prefix``.

    File contents are read later, when the layer is written. Files sharing an inode become a hardlink
    group. A device node, FIFO or socket is an error: they never come from user input.
    """
    if not root.is_dir():
        raise OCIError(f"layer source {root} is not a directory")
    out: list[LayerEntry] = []
    inodes: dict[tuple[int, int], str] = {}
    paths: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            full = Path(dirpath) / name
            paths.append((full.relative_to(root).as_posix(), full))
    paths.sort(key=lambda p: sort_key(p[0]))
    for rel, full in paths:
        st = full.lstat()
        if stat.S_ISLNK(st.st_mode):
            out.append(LayerEntry(rel, "symlink", SYMLINK_MODE, target=str(full.readlink())))
        elif stat.S_ISDIR(st.st_mode):
            out.append(LayerEntry(rel, "dir", st.st_mode & 0o7777))
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in inodes:
                out.append(LayerEntry(rel, "hardlink", st.st_mode & 0o7777, target=inodes[key]))
            else:
                if st.st_nlink > 1:
                    inodes[key] = rel
                out.append(LayerEntry(rel, "file", st.st_mode & 0o7777, full))
        else:
            raise OCIError(
                f"layer source {full} is a device node, FIFO or socket",
                hint="layers from user input hold only files, directories and links",
            )
    return [e.with_prefix(prefix) for e in out]


def entries_from_tar(archive: Path, prefix: str = "/", *, drop_devices: bool = True) -> list[LayerEntry]:
    """Entries of an uncompressed tar (e.g. an mmdebstrap rootfs), streaming file contents from it.

    Mode, uid, gid and mtime are kept on the entries (used with ``preserve_metadata``). Device nodes
    and FIFOs are dropped when ``drop_devices`` (the runtime creates ``/dev``), otherwise an error.
    Unsafe names (``..``) are errors.
    """
    out: list[LayerEntry] = []
    try:
        with tarfile.open(archive, mode="r:") as tf:
            for m in tf:
                if m.name.strip("/") in ("", "."):
                    continue
                path = normalize_path(m.name, origin=f"tar {archive}")
                kind: EntryKind
                content: Content | None = None
                target: str | None = None
                if m.isreg():
                    kind, content = "file", TarSlice(archive, m.offset_data, m.size)
                elif m.isdir():
                    kind = "dir"
                elif m.issym():
                    kind, target = "symlink", m.linkname
                elif m.islnk():
                    kind, target = "hardlink", normalize_path(m.linkname, origin=f"tar {archive}")
                elif drop_devices:
                    continue
                else:
                    raise OCIError(f"tar {archive}: {m.name!r} is a device node or FIFO")
                out.append(LayerEntry(path, kind, m.mode & 0o7777, content, target, m.uid, m.gid, int(m.mtime)))
    except (tarfile.TarError, OSError) as e:
        raise OCIError(f"reading tar {archive}: {e}") from e
    return [e.with_prefix(prefix) for e in out]


def _normal_mode(e: LayerEntry) -> int:
    if e.kind == "dir":
        return DIR_MODE
    if e.kind == "symlink":
        return SYMLINK_MODE
    return EXEC_MODE if e.mode & 0o111 else FILE_MODE


class _SliceReader(io.RawIOBase):
    """Exactly ``size`` bytes of ``f`` from its current position."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self._left)
        if n == 0:
            return 0
        data = self._f.read(n)
        b[: len(data)] = data
        self._left -= len(data)
        return len(data)


def _open_content(e: LayerEntry, archives: dict[Path, BinaryIO]) -> BinaryIO:
    c = e.content
    if isinstance(c, bytes):
        return io.BytesIO(c)
    if isinstance(c, TarSlice):
        f = archives.get(c.archive)
        if f is None:
            f = archives[c.archive] = c.archive.open("rb")
        f.seek(c.offset)
        return io.BufferedReader(_SliceReader(f, c.size), 1 << 20)
    assert isinstance(c, Path)
    return c.open("rb")


def _tarinfo(e: LayerEntry, epoch: int, preserve_metadata: bool) -> tarfile.TarInfo:
    """The header of ``e`` (a canonical entry) as :func:`write_tar` writes it."""
    info = tarfile.TarInfo(e.path)
    info.uid, info.gid = (e.uid, e.gid) if preserve_metadata else (0, 0)
    info.uname = info.gname = ""
    info.mode = (e.mode & 0o7777) if preserve_metadata else _normal_mode(e)
    mtime = epoch if not preserve_metadata or e.mtime is None else min(e.mtime, epoch)
    info.mtime = int(mtime)
    if e.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif e.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = e.target or ""
        info.mode = SYMLINK_MODE
    elif e.kind == "hardlink":
        info.type = tarfile.LNKTYPE
        info.linkname = e.target or ""
    else:
        info.type = tarfile.REGTYPE
        info.size = e.size
    return info


#: tarfile's encoding and error handler for names (``TarFile(encoding="utf-8")``, default errors).
_ENCODING, _ERRORS = "utf-8", "surrogateescape"


def write_tar(
    entries: Sequence[LayerEntry] | Iterable[LayerEntry],
    epoch: int,
    out: BinaryIO,
    *,
    preserve_metadata: bool = False,
) -> None:
    """Write the canonical tar of ``entries`` to ``out`` (see the module docstring for the rules)."""
    archives: dict[Path, BinaryIO] = {}
    try:
        # copybufsize: copy file contents in 1 MiB reads (default 16 KiB), so the hashers and the
        # compressor get fewer, larger buffers (they release the GIL only for large ones). Bytes unchanged.
        with tarfile.TarFile(
            fileobj=out, mode="w", format=tarfile.PAX_FORMAT, encoding=_ENCODING, copybufsize=1 << 20
        ) as tf:
            for e in canonical_entries(entries):
                info = _tarinfo(e, epoch, preserve_metadata)
                if info.type != tarfile.REGTYPE:
                    tf.addfile(info)
                    continue
                with _open_content(e, archives) as f:
                    if isinstance(e.content, Path) and os.fstat(f.fileno()).st_size != info.size:
                        raise OCIError(f"layer source {e.content} changed size while the layer was written")
                    tf.addfile(info, f)
    except OSError as e:
        raise OCIError(f"writing a layer tar: {e}") from e
    finally:
        for f in archives.values():
            f.close()


def tar_size(entries: Iterable[LayerEntry], epoch: int, *, preserve_metadata: bool = False) -> int:
    """The exact length of :func:`write_tar`'s output for ``entries``, without reading any content.

    Each header as tarfile encodes it (PAX extended headers included), each file's content padded to
    512-byte blocks, then tarfile's end: two zero blocks and padding to a 10240-byte record.
    """
    size = 0
    for e in canonical_entries(entries):
        info = _tarinfo(e, epoch, preserve_metadata)
        size += len(info.tobuf(tarfile.PAX_FORMAT, _ENCODING, _ERRORS))
        if info.type == tarfile.REGTYPE:
            size += -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    size += 2 * tarfile.BLOCKSIZE
    return -(-size // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


def tar_bytes(entries: Iterable[LayerEntry], epoch: int, *, preserve_metadata: bool = False) -> bytes:
    """The canonical tar in memory (small layers and tests)."""
    buf = io.BytesIO()
    write_tar(list(entries), epoch, buf, preserve_metadata=preserve_metadata)
    return buf.getvalue()


def iter_prefixed(entries: Iterable[LayerEntry], prefix: str) -> Iterator[LayerEntry]:
    """``entries`` moved under ``prefix``."""
    for e in entries:
        yield e.with_prefix(prefix)
