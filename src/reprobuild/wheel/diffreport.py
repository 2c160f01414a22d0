"""Explain why two builds of the same artifact differ, member by member.

Each difference names the member and its *kind*, so a reader can tell a container problem
(metadata only, fixable by canonicalisation) from a backend problem (content):

``only-in-a`` / ``only-in-b``
    the member exists in one build only;
``order``
    the same members in a different order;
``time`` / ``mode`` / ``owner`` / ``type`` / ``compression`` / ``system``
    archive metadata of one member (zip ``date_time``, ``external_attr``, tar uid/gid/names, …);
``content``
    the member's bytes differ. Text members show the first differing lines; ELF members name the
    sections whose bytes differ (``readelf -S`` when it is installed, the usual place for a leaked
    path or timestamp); other binaries give byte offsets;
``container``
    the archive bytes differ although every member and its metadata are equal (zip central
    directory or comment, gzip header, compression stream).

For a full recursive diff keep both artifacts (``--report DIR``) and run ``diffoscope`` on them.
"""

from __future__ import annotations

import difflib
import gzip
import io
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: How many offsets or lines a content difference shows before it says "…".
MAX_SHOWN = 6
_SECTION_RE = re.compile(r"^\s*\[\s*\d+\]\s+(\S*)\s+([A-Z_0-9]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)")


@dataclass(frozen=True)
class MemberDifference:
    """One way in which a member (or the archive as a whole, member ``""``) differs."""

    member: str
    kind: str
    detail: str

    def __str__(self) -> str:
        where = self.member or "(archive)"
        return f"{where}: {self.kind}: {self.detail}" if self.detail else f"{where}: {self.kind}"


# ---------------------------------------------------------------------------------------------
# Content


#: Block size for the first pass of :func:`_ranges`: equal blocks are skipped without a byte loop.
_BLOCK = 4096


def _ranges(a: bytes, b: bytes) -> list[tuple[int, int]]:
    """Half-open ranges of differing byte offsets (a length difference adds the tail)."""
    out: list[tuple[int, int]] = []
    start: int | None = None
    n = min(len(a), len(b))
    for block in range(0, n, _BLOCK):
        end = min(block + _BLOCK, n)
        if a[block:end] == b[block:end]:
            if start is not None:
                out.append((start, block))
                start = None
            continue
        for i in range(block, end):
            if a[i] != b[i]:
                if start is None:
                    start = i
            elif start is not None:
                out.append((start, i))
                start = None
    if start is not None:
        out.append((start, n))
    if len(a) != len(b):
        out.append((n, max(len(a), len(b))))
    return out


def _offsets_text(ranges: list[tuple[int, int]]) -> str:
    shown = ", ".join(f"0x{s:x}" if e - s == 1 else f"0x{s:x}-0x{e - 1:x}" for s, e in ranges[:MAX_SHOWN])
    more = f" (+{len(ranges) - MAX_SHOWN} more ranges)" if len(ranges) > MAX_SHOWN else ""
    return f"bytes differ at {shown}{more}"


def elf_sections(data: bytes) -> list[tuple[str, int, int]] | None:
    """``(name, offset, size)`` of each ELF section that occupies file bytes, via ``readelf -S -W``.

    None when readelf is not installed or cannot read the data.
    """
    readelf = shutil.which("readelf")
    if readelf is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".elf") as f:
        f.write(data)
        f.flush()
        proc = subprocess.run([readelf, "-S", "-W", f.name], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    sections = []
    for line in proc.stdout.splitlines():
        m = _SECTION_RE.match(line)
        if m and m.group(2) not in {"NULL", "NOBITS"}:
            sections.append((m.group(1), int(m.group(4), 16), int(m.group(5), 16)))
    return sections


def _elf_detail(a: bytes, b: bytes, ranges: list[tuple[int, int]]) -> str:
    sa, sb = elf_sections(a), elf_sections(b)
    if sa is None or sb is None:
        return "ELF, " + _offsets_text(ranges)
    if [(n, s) for n, _o, s in sa] != [(n, s) for n, _o, s in sb]:
        changed = sorted({n for n, _o, s in sa} ^ {n for n, _o, s in sb}) or sorted(
            n for (n, _o, s), (_m, _p, t) in zip(sa, sb, strict=False) if s != t
        )
        cause = _dwarf_cause(a, b, sa, sb) if any(n.startswith(".debug") for n in changed) else ""
        return f"ELF section layout differs (sections {', '.join(changed) or '?'}); {_offsets_text(ranges)}{cause}"
    hit: dict[str, int] = {}
    for start, end in ranges:
        for offset in range(start, end):
            name = next((n for n, o, s in sa if o <= offset < o + s), "(ELF headers or section table)")
            hit[name] = hit.get(name, 0) + 1
    listed = ", ".join(f"{n or '(unnamed)'} ({c} byte{'s' if c != 1 else ''})" for n, c in sorted(hit.items()))
    cause = _dwarf_cause(a, b, sa, sb) if any(n.startswith(".debug") for n in hit) else ""
    return f"ELF sections differ: {listed}{cause}"


#: DWARF string sections: file and directory names (``DW_AT_comp_dir``, the line table) live here.
_DWARF_STRINGS = (".debug_line_str", ".debug_str")
#: ``TMPDIR`` of a build (``<build root>/tmp``) as it appears in DWARF once the build root is mapped to
#: ``.`` (:func:`reprobuild.wheel.build.normalised_env`).
_MAPPED_TMPDIR = "./tmp/"


def _strings(data: bytes, sections: list[tuple[str, int, int]]) -> set[str]:
    out: set[str] = set()
    for name, offset, size in sections:
        if name in _DWARF_STRINGS:
            out |= {s.decode("utf-8", "replace") for s in data[offset : offset + size].split(b"\0") if s}
    return out


def _dwarf_cause(a: bytes, b: bytes, sa: list[tuple[str, int, int]], sb: list[tuple[str, int, int]]) -> str:
    """The DWARF strings only one build has (paths, mostly), and the cause when they name a directory
    the backend made under ``TMPDIR``: a random name (Python's ``tempfile``) that no prefix map can name."""
    only_a, only_b = sorted(_strings(a, sa) - _strings(b, sb)), sorted(_strings(b, sb) - _strings(a, sa))
    if not only_a and not only_b:
        return ""
    shown = f"; DWARF strings differ: {only_a[:2]!r} vs {only_b[:2]!r}"
    if any(s.startswith(_MAPPED_TMPDIR) for s in only_a + only_b):
        shown += (
            " (the backend compiled in a randomly named directory under TMPDIR, e.g. with Python's tempfile; "
            "its path reaches DW_AT_comp_dir and the line table, and no -ffile-prefix-map can name a random "
            "directory: have the backend build in place, or build without debug info with CPPFLAGS=-g0)"
        )
    return shown


def _text(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def describe_content(a: bytes, b: bytes) -> str:
    """One line saying where two different byte strings differ (text lines, ELF sections or offsets)."""
    ta, tb = _text(a), _text(b)
    if ta is not None and tb is not None:
        diff = [
            line
            for line in difflib.unified_diff(ta.splitlines(), tb.splitlines(), "a", "b", n=0, lineterm="")
            if not line.startswith(("---", "+++", "@@"))
        ]
        shown = " | ".join(repr(line) for line in diff[:MAX_SHOWN])
        return f"text differs: {shown}{' …' if len(diff) > MAX_SHOWN else ''}"
    ranges = _ranges(a, b)
    if a.startswith(b"\x7fELF") and b.startswith(b"\x7fELF"):
        return _elf_detail(a, b, ranges)
    size = f" (sizes {len(a)} vs {len(b)})" if len(a) != len(b) else ""
    return _offsets_text(ranges) + size


# ---------------------------------------------------------------------------------------------
# Archives


def _order(names_a: list[str], names_b: list[str]) -> list[MemberDifference]:
    common = set(names_a) & set(names_b)
    oa = [n for n in names_a if n in common]
    ob = [n for n in names_b if n in common]
    if oa == ob:
        return []
    i = next(i for i, (x, y) in enumerate(zip(oa, ob, strict=True)) if x != y)
    return [MemberDifference("", "order", f"member #{i + 1} is {oa[i]!r} in a but {ob[i]!r} in b")]


def _presence(names_a: list[str], names_b: list[str]) -> list[MemberDifference]:
    out = [MemberDifference(n, "only-in-a", "") for n in sorted(set(names_a) - set(names_b))]
    out += [MemberDifference(n, "only-in-b", "") for n in sorted(set(names_b) - set(names_a))]
    return out


def diff_wheels(a: bytes, b: bytes) -> tuple[MemberDifference, ...]:
    """Member-level differences between two wheels (zip archives)."""
    with zipfile.ZipFile(io.BytesIO(a)) as za, zipfile.ZipFile(io.BytesIO(b)) as zb:
        ia = {i.filename: i for i in za.infolist()}
        ib = {i.filename: i for i in zb.infolist()}
        out = presence_and_order(list(ia), list(ib))
        content_changed = False
        record_diffs: list[MemberDifference] = []
        for name in (n for n in ia if n in ib):
            x, y = ia[name], ib[name]
            diffs: list[MemberDifference] = []
            if x.date_time != y.date_time:
                diffs.append(MemberDifference(name, "time", f"{_dt(x.date_time)} vs {_dt(y.date_time)}"))
            if x.external_attr != y.external_attr:
                diffs.append(MemberDifference(name, "mode", f"{x.external_attr >> 16:o} vs {y.external_attr >> 16:o}"))
            if x.create_system != y.create_system:
                diffs.append(MemberDifference(name, "system", f"create_system {x.create_system} vs {y.create_system}"))
            if x.compress_type != y.compress_type:
                diffs.append(MemberDifference(name, "compression", f"method {x.compress_type} vs {y.compress_type}"))
            da, db = za.read(x), zb.read(y)
            if da != db:
                diffs.append(MemberDifference(name, "content", describe_content(da, db)))
            elif x.compress_size != y.compress_size and x.compress_type == y.compress_type:
                diffs.append(MemberDifference(name, "compression", "same content, different compressed bytes"))
            if name.endswith(".dist-info/RECORD"):
                record_diffs = diffs
            else:
                content_changed = content_changed or any(d.kind == "content" for d in diffs)
                out += diffs
        if record_diffs and content_changed:
            # RECORD holds the other members' hashes: its change follows from theirs.
            record_diffs = [
                MemberDifference(d.member, d.kind, "follows from the members above (RECORD lists their hashes)")
                if d.kind == "content"
                else d
                for d in record_diffs
            ]
        out += record_diffs
    if not out and a != b:
        out.append(MemberDifference("", "container", "same members and metadata; the zip structure bytes differ"))
    return tuple(out)


def _dt(t: tuple[int, int, int, int, int, int]) -> str:
    return "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}".format(*t)


def _read_tar(data: bytes) -> tuple[bytes, list[tarfile.TarInfo], dict[str, bytes]]:
    raw = gzip.decompress(data)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        members = tar.getmembers()
        bodies = {}
        for m in members:
            if m.isfile():
                f = tar.extractfile(m)
                bodies[m.name] = f.read() if f else b""
    return raw, members, bodies


def tar_member_differences(name: str, x: tarfile.TarInfo, y: tarfile.TarInfo) -> list[MemberDifference]:
    """Header differences of one tar member present in both archives (type, time, mode, owner, link)."""
    out: list[MemberDifference] = []
    if x.type != y.type:
        out.append(MemberDifference(name, "type", f"{x.type!r} vs {y.type!r}"))
    if x.mtime != y.mtime:
        out.append(MemberDifference(name, "time", f"mtime {x.mtime} vs {y.mtime}"))
    if x.mode != y.mode:
        out.append(MemberDifference(name, "mode", f"{x.mode:o} vs {y.mode:o}"))
    if (x.uid, x.gid, x.uname, x.gname) != (y.uid, y.gid, y.uname, y.gname):
        out.append(
            MemberDifference(
                name, "owner", f"{x.uid}:{x.gid} {x.uname}:{x.gname} vs {y.uid}:{y.gid} {y.uname}:{y.gname}"
            )
        )
    if x.linkname != y.linkname:
        out.append(MemberDifference(name, "content", f"link target {x.linkname!r} vs {y.linkname!r}"))
    return out


def presence_and_order(names_a: list[str], names_b: list[str]) -> list[MemberDifference]:
    """Members found in one archive only, and a different order of the common ones."""
    return _presence(names_a, names_b) + _order(names_a, names_b)


def diff_sdists(a: bytes, b: bytes) -> tuple[MemberDifference, ...]:
    """Member-level differences between two sdists (gzip-compressed tar archives)."""
    raw_a, ma, ba = _read_tar(a)
    raw_b, mb, bb = _read_tar(b)
    ia = {m.name: m for m in ma}
    ib = {m.name: m for m in mb}
    out = presence_and_order(list(ia), list(ib))
    for name in (n for n in ia if n in ib):
        x, y = ia[name], ib[name]
        out += tar_member_differences(name, x, y)
        if name in ba and name in bb and ba[name] != bb[name]:
            out.append(MemberDifference(name, "content", describe_content(ba[name], bb[name])))
    if not out:
        if raw_a != raw_b:
            out.append(
                MemberDifference("", "container", "same members and metadata; the tar header or padding bytes differ")
            )
        elif a != b:
            out.append(MemberDifference("", "container", "same tar; the gzip header or compression differs"))
    return tuple(out)


def diff_artifacts(path_a: Path, path_b: Path) -> tuple[MemberDifference, ...]:
    """Differences between two builds of one artifact (a wheel or an sdist, by file name)."""
    a, b = path_a.read_bytes(), path_b.read_bytes()
    if a == b:
        return ()
    if path_a.name.endswith(".whl"):
        return diff_wheels(a, b)
    return diff_sdists(a, b)
