"""Rewrite an sdist (``.tar.gz``) into its canonical form, leaving every member's content untouched.

Canonical form (DESIGN.md "Canonical forms" for tar; PEP 625 / the sdist spec for the layout):

* members sorted by path components (parents before children);
* uid/gid 0, empty uname/gname (setuptools writes the builder's user; hatchling writes root);
* mtime = the epoch for every member (setuptools copies file mtimes, which a checkout does not fix);
* modes 0644, or 0755 when any execute bit is set; directories 0755; symlinks 0777;
* PAX format without extended headers except where a long or non-ASCII name needs one;
* gzip as one member made by libdeflate (the compressor repro-build pins, never the host's zlib) at
  level :data:`GZIP_LEVEL`: header mtime 0, no file name, XFL 2, OS 255.

Only regular files, directories, symlinks and hard links (to an earlier member) are accepted.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zlib

from repro_build.epoch import Epoch
from repro_build.errors import WheelError
from repro_build.oci.compress import gzip_member, libdeflate_versions
from repro_build.wheel.canonical_zip import ArchiveCompressor, archive_compressor, refuse_duplicates

#: Python's gzip default (the level sdists have always had here); fixed so the bytes never follow a
#: backend's choice.
GZIP_LEVEL = 9
_TYPES = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE}


def gzip_compressor() -> ArchiveCompressor:
    return archive_compressor("gzip, one member, mtime 0", GZIP_LEVEL)


def path_key(name: str) -> tuple[str, ...]:
    """Sort key: path components, so ``a/b`` comes right after ``a`` and before ``a-b``."""
    return tuple(name.rstrip("/").split("/"))


def _mode(member: tarfile.TarInfo) -> int:
    if member.isdir():
        return 0o755
    if member.issym():
        return 0o777
    return 0o755 if member.mode & 0o111 else 0o644


def _check(member: tarfile.TarInfo, origin: str) -> None:
    name = member.name
    if member.type not in _TYPES:
        raise WheelError(
            f"{origin}: member {name!r} has unsupported type {member.type!r} (devices and FIFOs are not allowed)",
            hint="the build backend wrote an unusual sdist; remove that file from the source tree",
        )
    if name.startswith("/") or posixpath.normpath(name).startswith("..") or "\0" in name:
        raise WheelError(f"{origin}: unsafe member name {name!r}", hint="the build backend wrote a broken sdist")


def _read(data: bytes, origin: str) -> tuple[list[tarfile.TarInfo], dict[str, bytes]]:
    """The checked members of an sdist and the bodies of its regular files."""
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as src:
            members = src.getmembers()
            refuse_duplicates([m.name for m in members], origin, "sdist")
            for m in members:
                _check(m, origin)
                if m.isfile():
                    f = src.extractfile(m)
                    assert f is not None  # a regular file always has a body
                    contents[m.name] = f.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise WheelError(
            f"{origin} is not a gzip-compressed tar: {e}", hint="the build backend wrote a broken sdist"
        ) from e
    return members, contents


def canonicalize_sdist(data: bytes, epoch: Epoch, origin: str) -> bytes:
    """The canonical bytes of the sdist ``data`` (``origin`` names it in errors)."""
    members, contents = _read(data, origin)
    libdeflate_versions()  # refuse an unpinned libdeflate before writing anything
    ordered = sorted(members, key=lambda m: path_key(m.name))
    raw = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for m in ordered:
            info = tarfile.TarInfo(m.name)
            info.type = tarfile.REGTYPE if m.type == tarfile.AREGTYPE else m.type
            info.mode = _mode(m)
            info.mtime = epoch.seconds
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if m.issym() or m.islnk():
                if m.islnk() and m.linkname not in seen:
                    raise WheelError(
                        f"{origin}: hard link {m.name!r} points at {m.linkname!r}, which does not precede it "
                        "in sorted order",
                        hint="replace the hard link in the source tree with a copy",
                    )
                info.linkname = m.linkname
            if m.isfile():
                body = contents[m.name]
                info.size = len(body)
                dst.addfile(info, io.BytesIO(body))
            else:
                dst.addfile(info)
            seen.add(m.name)
    # libdeflate's gzip header carries no name and no time (RFC 1952 §2.3.1: MTIME 0 = none).
    return gzip_member(raw.getvalue(), GZIP_LEVEL)
