"""Rewrite a wheel into its canonical zip form, leaving every member's *content* untouched (except RECORD).

Canonical form (PEP 427; docs/explanation/determinism.md):

* members sorted by name, the ``.dist-info`` directory last and its ``RECORD`` the very last member
  (PEP 427 recommends this order so installers can stream the archive);
* ``RECORD`` regenerated from the bytes actually written (:mod:`reprobuild.wheel.record`);
* every ``date_time`` = the epoch as a DOS time, floored at 1980-01-01 (:attr:`Epoch.zip_seconds`);
* modes 0644, or 0755 when the backend set any execute bit (so scripts stay executable), directory
  entries 0755; ``create_system`` = 3 (Unix) so installers read those modes;
* raw DEFLATE at :data:`DEFLATE_LEVEL` made by libdeflate, the compressor repro-build pins for layers
  too (:mod:`reprobuild.oci.compress`), never by the host's zlib (directory entries stored); no extra
  fields, no comments.

``zipfile`` writes the structure (headers, CRC-32, sizes, ZIP64 where needed); only its compressor
object is replaced, per member, by :class:`_LibdeflateMember`. The bytes then depend only on the pinned
libdeflate version and the level, which :func:`zip_compressor` names for the build record.
"""

from __future__ import annotations

import io
import posixpath
import time
import zipfile
from dataclasses import dataclass

from reprobuild.epoch import Epoch
from reprobuild.errors import WheelError
from reprobuild.oci.compress import libdeflate_versions, raw_deflate
from reprobuild.wheel.record import parse_record, render_record, verify_record

#: The usual speed/size trade-off; fixed so the bytes do not depend on a backend's or library's default.
DEFLATE_LEVEL = 6
#: ``create_system`` value meaning "Unix": installers only honour the mode bits in ``external_attr`` then.
UNIX = 3
_FILE_MODE = 0o100644
_EXEC_MODE = 0o100755
#: ``S_IFDIR | 0755`` plus the MS-DOS directory attribute bit (0x10), as ``zipfile`` writes it.
_DIR_ATTR = (0o40755 << 16) | 0x10


@dataclass(frozen=True)
class ArchiveCompressor:
    """What produced an archive's deflate bytes (wheel zip or sdist gzip); recorded with each build."""

    implementation: str
    library: str
    library_version: str
    package_version: str
    level: int

    def describe(self) -> str:
        """One line for the build record, e.g. ``zipfile with libdeflate 1.25 (deflate 0.9.0) level 6``."""
        return (
            f"{self.implementation} with {self.library} {self.library_version} "
            f"(deflate {self.package_version}) level {self.level}"
        )


def archive_compressor(implementation: str, level: int) -> ArchiveCompressor:
    package, library = libdeflate_versions()
    return ArchiveCompressor(implementation, "libdeflate", library, package, level)


def zip_compressor() -> ArchiveCompressor:
    return archive_compressor("zipfile, raw deflate", DEFLATE_LEVEL)


def zip_date_time(epoch: Epoch) -> tuple[int, int, int, int, int, int]:
    """The epoch as a ZIP ``date_time`` tuple (UTC, floored at 1980, even seconds as DOS stores them)."""
    t = time.gmtime(epoch.zip_seconds)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec - t.tm_sec % 2)


def _check_name(name: str, origin: str) -> None:
    norm = posixpath.normpath(name)
    if name.startswith("/") or norm.startswith("..") or "\\" in name or "\0" in name:
        raise WheelError(f"{origin}: unsafe member name {name!r}", hint="the build backend wrote a broken wheel")


def refuse_duplicates(names: list[str], origin: str, kind: str) -> None:
    """A member name twice in one archive makes its content ambiguous: refuse the archive."""
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise WheelError(f"{origin}: duplicate members {dupes}", hint=f"the build backend wrote a broken {kind}")


def dist_info_dir(names: list[str], origin: str) -> str:
    """The single top-level ``*.dist-info`` directory of a wheel (PEP 427)."""
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    found = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(found) != 1:
        raise WheelError(
            f"{origin}: expected exactly one top-level .dist-info directory, found {found or 'none'}",
            hint="the build backend wrote a broken wheel",
        )
    return found[0]


def member_sort_key(name: str, dist_info: str) -> tuple[int, str]:
    """PEP 427 order: everything else by name, then ``.dist-info``, then its ``RECORD``."""
    if name == f"{dist_info}/RECORD":
        return (2, name)
    if name.startswith(f"{dist_info}/"):
        return (1, name)
    return (0, name)


def _mode_attr(info: zipfile.ZipInfo) -> int:
    if info.is_dir():
        return _DIR_ATTR
    mode = info.external_attr >> 16
    return (_EXEC_MODE if mode & 0o111 else _FILE_MODE) << 16


def canonicalize_wheel(data: bytes, epoch: Epoch, origin: str) -> bytes:
    """The canonical bytes of the wheel ``data`` (``origin`` names it in errors).

    The RECORD the backend wrote is checked against the members first, so a regenerated RECORD
    never hides a backend bug.
    """
    try:
        src = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise WheelError(f"{origin} is not a zip archive: {e}", hint="the build backend wrote a broken wheel") from e
    with src:
        infos = src.infolist()
        names = [i.filename for i in infos]
        refuse_duplicates(names, origin, "wheel")
        for n in names:
            _check_name(n, origin)
        dist_info = dist_info_dir(names, origin)
        record_name = f"{dist_info}/RECORD"
        contents = {i.filename: src.read(i) for i in infos if not i.is_dir()}
    if record_name in contents:
        verify_record(parse_record(contents[record_name], origin), contents, origin)
    ordered = sorted(
        (i for i in infos if i.filename != record_name), key=lambda i: member_sort_key(i.filename, dist_info)
    )
    libdeflate_versions()  # refuse an unpinned libdeflate before writing anything
    date_time = zip_date_time(epoch)
    record = render_record(record_name, [(i.filename, contents[i.filename]) for i in ordered if not i.is_dir()])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in ordered:
            _write(dst, info.filename, b"" if info.is_dir() else contents[info.filename], date_time, _mode_attr(info))
        _write(dst, record_name, record, date_time, _FILE_MODE << 16)
    return out.getvalue()


class _LibdeflateMember:
    """Stands in for ``zipfile``'s zlib compressor object: collects a member and deflates it whole at flush."""

    def __init__(self, level: int) -> None:
        self._level = level
        self._parts: list[bytes] = []

    def compress(self, data: bytes) -> bytes:
        self._parts.append(bytes(data))
        return b""

    def flush(self) -> bytes:
        return raw_deflate(b"".join(self._parts), self._level)


def _write(dst: zipfile.ZipFile, name: str, data: bytes, date_time: tuple[int, ...], attr: int) -> None:
    zinfo = zipfile.ZipInfo(name, date_time=date_time)  # type: ignore[arg-type]
    zinfo.create_system = UNIX
    zinfo.external_attr = attr
    if name.endswith("/"):
        zinfo.compress_type = zipfile.ZIP_STORED
        dst.writestr(zinfo, data)
        return
    zinfo.compress_type = zipfile.ZIP_DEFLATED
    # What ZipFile.writestr does, with the compressor replaced: file_size first (it decides ZIP64), then
    # zipfile computes the CRC-32 of the data and patches the sizes into the local header on close.
    zinfo.file_size = len(data)
    with dst.open(zinfo, mode="w") as w:
        if not hasattr(w, "_compressor"):  # pragma: no cover - a future zipfile without this attribute
            raise WheelError(
                f"this Python's zipfile ({type(w).__qualname__}) has no per-member compressor to replace",
                hint="report this with your Python version; repro-build cannot write canonical wheels with it",
            )
        w._compressor = _LibdeflateMember(DEFLATE_LEVEL)
        w.write(data)
