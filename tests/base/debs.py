"""Test helpers: synthetic ``.deb`` files (ar + control.tar + data.tar) and a package index.

The ar writer follows the common format that ``dpkg-deb`` reads; ``test_deb.py`` checks that
``dpkg-deb`` accepts what these helpers write, so they are not a second copy of the code under test.
"""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import zstandard

from reprobuild.base.debian.deb822 import iter_stanzas
from reprobuild.base.debian.packages import PackageIndex


@dataclass(frozen=True)
class Item:
    """One data.tar entry: ``kind`` is file, dir, symlink, hardlink, chr or fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class FakeDeb:
    package: str
    version: str = "1.0-1"
    arch: str = "amd64"
    items: Sequence[Item] = field(default_factory=tuple)
    extra_control: str = ""


def _tar(items: Sequence[Item]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for item in items:
            info = tarfile.TarInfo(item.name)
            info.mode, info.uid, info.gid, info.mtime = item.mode, item.uid, item.gid, 1_600_000_000
            types = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "fifo": tarfile.FIFOTYPE,
            }
            if item.kind == "file":
                info.size = len(item.data)
                tf.addfile(info, io.BytesIO(item.data))
                continue
            info.type = types[item.kind]
            info.linkname = item.target
            tf.addfile(info)
    return buf.getvalue()


def _compress(data: bytes, suffix: str) -> bytes:
    if suffix == ".xz":
        return lzma.compress(data)
    if suffix == ".zst":
        return zstandard.ZstdCompressor().compress(data)
    if suffix == ".gz":
        return gzip.compress(data, mtime=0)
    return data


def ar(members: Sequence[tuple[str, bytes]]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += [header, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def control_text(deb: FakeDeb) -> str:
    return (
        f"Package: {deb.package}\nVersion: {deb.version}\nArchitecture: {deb.arch}\n"
        f"Maintainer: Test <test@invalid>\n{deb.extra_control}Description: test package\n"
    )


def make_deb(deb: FakeDeb, compression: str = ".xz") -> bytes:
    """A ``.deb`` with ``deb.items`` as data.tar (compressed by ``compression``)."""
    control = _tar(
        [
            Item("./", "dir", mode=0o755),
            Item("./control", data=control_text(deb).encode()),
            Item("./md5sums", data=b"d41d8cd98f00b204e9800998ecf8427e  usr/share/x\n"),
            Item("./postinst", data=b"#!/bin/sh\nexit 1\n", mode=0o755),
        ]
    )
    data = _tar(deb.items)
    return ar(
        [
            ("debian-binary", b"2.0\n"),
            (f"control.tar{compression}", _compress(control, compression)),
            (f"data.tar{compression}", _compress(data, compression)),
        ]
    )


def index_from(text: str) -> PackageIndex:
    """A :class:`PackageIndex` from Packages-file text (fields not given get dummy values)."""
    stanzas = []
    for stanza in iter_stanzas(text, "test"):
        stanza.setdefault("Architecture", "amd64")
        stanza.setdefault("Version", "1.0")
        stanza.setdefault("Filename", f"pool/{stanza['Package']}.deb")
        stanza.setdefault("Size", "1")
        stanza.setdefault("SHA256", "0" * 64)
        stanzas.append(stanza)
    return PackageIndex(stanzas, "test Packages")
