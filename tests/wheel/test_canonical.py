"""Canonical zip (wheel), canonical tar.gz (sdist) and RECORD: pure functions, no build needed."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from reprobuild.epoch import Epoch
from reprobuild.errors import WheelError
from reprobuild.uvbin import find_uv
from reprobuild.wheel.canonical_sdist import canonicalize_sdist
from reprobuild.wheel.canonical_zip import canonicalize_wheel, zip_date_time
from reprobuild.wheel.record import parse_record, record_hash, render_record

EPOCH = Epoch(1704164645, "config")  # 2024-01-02T03:04:05Z
DI = "demo-1.0.dist-info"
FILES = {
    "demo/__init__.py": b"print('hi')\n",
    "demo/tool.sh": b"#!/bin/sh\n",
    "demo-1.0.data/scripts/demo": b"#!python\n",
    f"{DI}/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
    f"{DI}/WHEEL": b"Wheel-Version: 1.0\n",
}


def messy_wheel(order: list[str], *, time: tuple[int, ...], umask_mode: int, record: bytes | None = None) -> bytes:
    """A wheel as a careless backend writes it: any order, local times, umask-dependent modes, DOS system."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in order:
            info = zipfile.ZipInfo(name, date_time=time)  # type: ignore[arg-type]
            mode = umask_mode | (0o111 if name.endswith(".sh") else 0)
            info.external_attr = (0o100000 | mode) << 16
            info.create_system = 0
            z.writestr(info, FILES[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
        body = record if record is not None else render_record(f"{DI}/RECORD", [(n, FILES[n]) for n in order])
        z.writestr(f"{DI}/RECORD", body)
    return buf.getvalue()


def test_record_hash_is_urlsafe_b64_without_padding() -> None:
    digest = hashlib.sha256(b"").digest()
    expected = "sha256=" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert record_hash(b"") == expected
    assert "=" not in expected.removeprefix("sha256=")


def test_canonical_wheel_layout() -> None:
    out = canonicalize_wheel(
        messy_wheel(sorted(FILES, reverse=True), time=(2030, 5, 6, 7, 8, 9), umask_mode=0o664), EPOCH, "x.whl"
    )
    with zipfile.ZipFile(io.BytesIO(out)) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        assert names == [
            "demo-1.0.data/scripts/demo",
            "demo/__init__.py",
            "demo/tool.sh",
            f"{DI}/METADATA",
            f"{DI}/WHEEL",
            f"{DI}/RECORD",
        ]
        for i in infos:
            assert i.date_time == (2024, 1, 2, 3, 4, 4)  # DOS times have 2-second resolution
            assert i.create_system == 3
            assert i.compress_type == zipfile.ZIP_DEFLATED
            assert i.extra == b""
            expected = 0o100755 if i.filename.endswith(".sh") else 0o100644
            assert i.external_attr >> 16 == expected
            if i.filename in FILES:
                assert z.read(i) == FILES[i.filename]  # contents untouched
        rows = parse_record(z.read(f"{DI}/RECORD"), "RECORD")
        assert list(rows) == names  # RECORD lists every member in archive order, itself last
        assert rows[f"{DI}/RECORD"] == ("", "")
        for name, (h, size) in rows.items():
            if name in FILES:
                assert h == record_hash(FILES[name])
                assert size == str(len(FILES[name]))


def test_canonical_wheel_ignores_order_time_and_umask() -> None:
    a = messy_wheel(sorted(FILES), time=(2001, 1, 1, 0, 0, 0), umask_mode=0o644)
    b = messy_wheel(sorted(FILES, reverse=True), time=(2039, 12, 31, 23, 59, 58), umask_mode=0o660)
    assert a != b
    ca, cb = canonicalize_wheel(a, EPOCH, "a.whl"), canonicalize_wheel(b, EPOCH, "b.whl")
    assert ca == cb
    assert canonicalize_wheel(ca, EPOCH, "again.whl") == ca  # idempotent


def test_zip_time_is_floored_at_1980() -> None:
    assert zip_date_time(Epoch(0, "config")) == (1980, 1, 1, 0, 0, 0)


def test_inconsistent_record_from_backend_is_an_error() -> None:
    bad = render_record(f"{DI}/RECORD", [(n, b"other bytes") for n in sorted(FILES)])
    with pytest.raises(WheelError, match="does not match its RECORD row"):
        canonicalize_wheel(
            messy_wheel(sorted(FILES), time=(2001, 1, 1, 0, 0, 0), umask_mode=0o644, record=bad), EPOCH, "x.whl"
        )


def test_wheel_without_dist_info_is_an_error() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("demo/__init__.py", b"")
    with pytest.raises(WheelError, match=r"x\.whl: expected exactly one top-level \.dist-info"):
        canonicalize_wheel(buf.getvalue(), EPOCH, "x.whl")


def messy_sdist(names: list[str], *, mtime: int, uid: int, gz_mtime: int) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name in names:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, uid, uid, "builder", "staff"
            if name.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o775
                t.addfile(info)
            else:
                body = name.encode()
                info.size, info.mode = len(body), 0o664 if not name.endswith(".sh") else 0o775
                t.addfile(info, io.BytesIO(body))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=gz_mtime, compresslevel=1) as g:
        g.write(raw.getvalue())
    return out.getvalue()


SDIST = [
    "demo-1.0/",
    "demo-1.0/PKG-INFO",
    "demo-1.0/demo/",
    "demo-1.0/demo/__init__.py",
    "demo-1.0/run.sh",
    "demo-1.0/demo-x",
]


def test_canonical_sdist() -> None:
    a = messy_sdist(SDIST, mtime=1, uid=1000, gz_mtime=12345)
    b = messy_sdist(list(reversed(SDIST)), mtime=2_000_000_000, uid=501, gz_mtime=0)
    ca, cb = canonicalize_sdist(a, EPOCH, "a.tar.gz"), canonicalize_sdist(b, EPOCH, "b.tar.gz")
    assert ca == cb
    assert ca[4:8] == b"\0\0\0\0"  # gzip header MTIME field (RFC 1952)
    assert canonicalize_sdist(ca, EPOCH, "again.tar.gz") == ca
    with tarfile.open(fileobj=io.BytesIO(ca), mode="r:gz") as t:
        members = t.getmembers()
        # Components order: the `demo` directory's children come before `demo-x`.
        assert [m.name for m in members] == [
            "demo-1.0",
            "demo-1.0/PKG-INFO",
            "demo-1.0/demo",
            "demo-1.0/demo/__init__.py",
            "demo-1.0/demo-x",
            "demo-1.0/run.sh",
        ]
        for m in members:
            assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", EPOCH.seconds)
            assert m.mode == (0o755 if m.isdir() or m.name.endswith(".sh") else 0o644)
            if m.isfile():
                f = t.extractfile(m)
                assert f is not None
                assert f.read() == m.name.encode()  # contents untouched


def test_sdist_with_a_device_node_is_refused() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        info = tarfile.TarInfo("demo-1.0/dev")
        info.type = tarfile.CHRTYPE
        t.addfile(info)
    with pytest.raises(WheelError, match=r"demo-1\.0/dev"):
        canonicalize_sdist(gzip.compress(raw.getvalue()), EPOCH, "demo-1.0.tar.gz")


def test_not_an_sdist() -> None:
    with pytest.raises(WheelError, match=r"x\.tar\.gz is not a gzip-compressed tar"):
        canonicalize_sdist(b"plain bytes", EPOCH, "x.tar.gz")


def test_libdeflate_wheel_and_sdist_are_valid_archives(tmp_path: Path) -> None:
    """Members deflated by libdeflate (not zipfile's zlib) still make a wheel that unzip, zipfile and uv accept."""
    big = b"".join(b"line %d of a generated module\n" % i for i in range(200_000))  # about 6 MB, many blocks
    files = {**FILES, "demo/big.py": big}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(f"{DI}/RECORD", render_record(f"{DI}/RECORD", list(files.items())))
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(canonicalize_wheel(buf.getvalue(), EPOCH, wheel.name))
    with zipfile.ZipFile(wheel) as z:
        assert z.testzip() is None  # every member's CRC-32 checks
        assert z.read("demo/big.py") == big
        assert z.getinfo("demo/big.py").compress_size < len(big) // 4
    subprocess.run(["unzip", "-tq", str(wheel)], check=True, capture_output=True)
    target = tmp_path / "site"
    subprocess.run(
        [find_uv(), "pip", "install", "--offline", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    assert (target / "demo" / "big.py").read_bytes() == big

    sdist = canonicalize_sdist(messy_sdist(SDIST, mtime=1, uid=1000, gz_mtime=5), EPOCH, "demo-1.0.tar.gz")
    assert sdist[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # mtime 0, XFL 2 (level 9), OS 255
    (tmp_path / "demo-1.0.tar.gz").write_bytes(sdist)
    subprocess.run(["gzip", "-t", str(tmp_path / "demo-1.0.tar.gz")], check=True)
    with tarfile.open(tmp_path / "demo-1.0.tar.gz", mode="r|gz") as t:  # stream mode: one member only
        assert [m.name for m in t][-1] == "demo-1.0/run.sh"
