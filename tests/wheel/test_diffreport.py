"""The member-level diff report: each kind of difference is named, ELF members by section."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import zipfile
from pathlib import Path

from reprobuild.wheel.diffreport import describe_content, diff_sdists, diff_wheels
from tests.testbed import unavailable


def _zip(members: list[tuple[str, bytes, tuple[int, ...], int]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, dt, mode in members:
            info = zipfile.ZipInfo(name, date_time=dt)  # type: ignore[arg-type]
            info.external_attr = mode << 16
            info.create_system = 3
            z.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


T1 = (2024, 1, 2, 3, 4, 4)
T2 = (2025, 1, 2, 3, 4, 4)


def test_metadata_only_differences_are_named() -> None:
    a = _zip([("p/a.py", b"x", T1, 0o100644), ("p/b.py", b"y", T1, 0o100644)])
    b = _zip([("p/b.py", b"y", T1, 0o100664), ("p/a.py", b"x", T2, 0o100644)])
    kinds = {(d.member, d.kind) for d in diff_wheels(a, b)}
    assert kinds == {("", "order"), ("p/a.py", "time"), ("p/b.py", "mode")}


def test_content_and_presence_differences() -> None:
    a = _zip([("p/a.py", b"line1\nstamp=1\n", T1, 0o100644), ("p/old.py", b"", T1, 0o100644)])
    b = _zip([("p/a.py", b"line1\nstamp=2\n", T1, 0o100644), ("p/new.py", b"", T1, 0o100644)])
    diffs = {d.member: d for d in diff_wheels(a, b)}
    assert diffs["p/a.py"].kind == "content"
    assert "'-stamp=1'" in diffs["p/a.py"].detail and "'+stamp=2'" in diffs["p/a.py"].detail
    assert diffs["p/old.py"].kind == "only-in-a"
    assert diffs["p/new.py"].kind == "only-in-b"


def test_binary_content_gives_byte_offsets() -> None:
    a = bytes(range(256)) * 4
    b = bytearray(a)
    b[0x10] ^= 0xFF
    b[0x200] ^= 0xFF
    assert describe_content(a, bytes(b)) == "bytes differ at 0x10, 0x200"


def test_gzip_header_only_difference_is_a_container_difference() -> None:
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        info = tarfile.TarInfo("p-1/x")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    a = gzip.compress(raw.getvalue(), mtime=0)
    b = gzip.compress(raw.getvalue(), mtime=1)
    [d] = diff_sdists(a, b)
    assert (d.member, d.kind) == ("", "container")


def test_elf_difference_names_the_sections(tmp_path: Path) -> None:
    """The same C file compiled with -g in two directories: only the debug-info sections differ."""
    if shutil.which("gcc") is None or shutil.which("readelf") is None:
        unavailable("gcc and readelf", "`apt-get install -y gcc binutils` (`.ci/run` does this)")
    outs = []
    for d in ("one", "a-much-longer-directory-name"):
        work = tmp_path / d
        work.mkdir()
        (work / "m.c").write_text("int f(void) { return 42; }\n")
        subprocess.run(["gcc", "-g", "-O0", "-fPIC", "-shared", "-o", "m.so", "m.c"], cwd=work, check=True)
        outs.append((work / "m.so").read_bytes())
    detail = describe_content(outs[0], outs[1])
    assert detail.startswith("ELF")
    assert ".debug_" in detail  # the compile directory lives in the DWARF sections
    assert ".text" not in detail


def _gcc(tmp_path: Path, rel: str, root: Path) -> bytes:
    work = tmp_path / rel
    work.mkdir(parents=True)
    (work / "m.c").write_text("int f(void) { return 42; }\n")
    cmd = ["gcc", "-g", "-O2", "-fPIC", "-shared", f"-ffile-prefix-map={root}=.", "-o", "m.so", "m.c"]
    subprocess.run(cmd, cwd=work, check=True)
    return (work / "m.so").read_bytes()


def test_random_directory_under_tmpdir_is_named_as_the_cause(tmp_path: Path) -> None:
    """What frozenlist's backend does: compile in tempfile.mkdtemp() under TMPDIR (<build root>/tmp), a
    random name the build root's prefix map leaves in DW_AT_comp_dir and the line table."""
    if shutil.which("gcc") is None or shutil.which("readelf") is None:
        unavailable("gcc and readelf", "`apt-get install -y gcc binutils` (`.ci/run` does this)")
    a = _gcc(tmp_path, "a/tmp/.tmp-demo-l_iu6pel/src", tmp_path / "a")
    b = _gcc(tmp_path, "b/tmp/.tmp-demo-u021b6s_/src", tmp_path / "b")
    detail = describe_content(a, b)
    assert "./tmp/.tmp-demo-l_iu6pel/src" in detail and "./tmp/.tmp-demo-u021b6s_/src" in detail
    assert "randomly named directory under TMPDIR" in detail and "CPPFLAGS=-g0" in detail


def test_other_dwarf_paths_are_shown_without_the_tmpdir_cause(tmp_path: Path) -> None:
    if shutil.which("gcc") is None or shutil.which("readelf") is None:
        unavailable("gcc and readelf", "`apt-get install -y gcc binutils` (`.ci/run` does this)")
    a = _gcc(tmp_path, "a/src/one", tmp_path / "a")
    b = _gcc(tmp_path, "b/src/other", tmp_path / "b")
    detail = describe_content(a, b)
    assert "DWARF strings differ: ['./src/one'] vs ['./src/other']" in detail
    assert "TMPDIR" not in detail


def test_offsets_across_block_boundaries() -> None:
    a = bytes(10000)
    b = bytearray(a)
    b[4090:4100] = b"\1" * 10  # a range that spans the 4 KiB block boundary
    b[9999] = 1
    assert describe_content(a, bytes(b)) == "bytes differ at 0xffa-0x1003, 0x270f"
    assert describe_content(a, a + b"\0\0") == "bytes differ at 0x2710-0x2711 (sizes 10000 vs 10002)"
