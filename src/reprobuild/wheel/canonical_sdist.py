"""Rewrite an sdist (``.tar.gz``) into its canonical form, leaving every member's content untouched.

Canonical form (the canonical tar rules of :mod:`reprobuild.oci.tarwriter`; PEP 625 / the sdist spec for the layout):

* members sorted by path components (parents before children);
* uid/gid 0, empty uname/gname (setuptools writes the builder's user; hatchling writes root);
* mtime = the epoch for every member (setuptools copies file mtimes, which a checkout does not fix);
* modes 0644, or 0755 when any execute bit is set; directories 0755; symlinks 0777;
* PAX format without extended headers except where a long or non-ASCII name needs one;
* gzip as one member made by libdeflate (the compressor repro-build pins, never the host's zlib) at
  level :data:`GZIP_LEVEL`: header mtime 0, no file name, XFL 2, OS 255.

Only regular files, directories, symlinks and hard links (to an earlier member) are accepted. A member
written twice with the same content is kept once (and reported); twice with different content is refused.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zlib
from collections.abc import Callable

from reprobuild.epoch import Epoch
from reprobuild.errors import WheelError
from reprobuild.oci.compress import gzip_member, libdeflate_versions
from reprobuild.wheel.canonical_zip import ArchiveCompressor, archive_compressor

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


def _identity(member: tarfile.TarInfo, body: bytes | None) -> tuple[object, ...]:
    """What must agree between two members of one name for them to be the same member."""
    kind = tarfile.REGTYPE if member.type == tarfile.AREGTYPE else member.type
    return (kind, _mode(member), member.linkname if (member.issym() or member.islnk()) else "", body)


def _read(
    data: bytes, origin: str, on_collapse: Callable[[str], None] | None = None
) -> tuple[list[tarfile.TarInfo], dict[str, bytes]]:
    """The checked members of an sdist and the bodies of its regular files.

    A name that appears more than once (hatchling and scikit-build-core write ``PKG-INFO`` twice) is
    kept once when every copy is the same (type, mode, link target, content), and reported through
    ``on_collapse``; copies that differ make the sdist ambiguous and are refused, naming the member.
    """
    contents: dict[str, bytes] = {}
    kept: list[tarfile.TarInfo] = []
    seen: dict[str, tuple[object, ...]] = {}
    collapsed: dict[str, int] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as src:
            for m in src.getmembers():
                _check(m, origin)
                body: bytes | None = None
                if m.isfile():
                    f = src.extractfile(m)
                    assert f is not None  # a regular file always has a body
                    body = f.read()
                ident = _identity(m, body)
                if m.name in seen:
                    if seen[m.name] != ident:
                        raise WheelError(
                            f"{origin}: member {m.name!r} appears more than once with different contents, "
                            "type or mode, so the sdist is ambiguous",
                            hint="the build backend wrote a broken sdist: check what adds that file twice "
                            "(e.g. an include rule and a generated file of the same name)",
                        )
                    collapsed[m.name] = collapsed.get(m.name, 1) + 1
                    continue
                seen[m.name] = ident
                kept.append(m)
                if body is not None:
                    contents[m.name] = body
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise WheelError(
            f"{origin} is not a gzip-compressed tar: {e}", hint="the build backend wrote a broken sdist"
        ) from e
    if on_collapse is not None:
        for name, count in sorted(collapsed.items()):
            on_collapse(f"{origin}: {name!r} was written {count} times with the same content; kept once")
    return kept, contents


def canonicalize_sdist(
    data: bytes, epoch: Epoch, origin: str, on_collapse: Callable[[str], None] | None = None
) -> bytes:
    """The canonical bytes of the sdist ``data`` (``origin`` names it in errors; identical duplicate
    members are kept once and reported through ``on_collapse``)."""
    members, contents = _read(data, origin, on_collapse)
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
