"""Reading a ``.deb`` in Python: the ``ar`` container, ``control.tar.*`` and ``data.tar.*``.

Spec: deb(5) (an ``ar`` archive whose members are ``debian-binary`` = ``2.0``, ``control.tar`` and
``data.tar``, each optionally compressed with xz, zstd or gzip; bzip2 and uncompressed are also
allowed) and the common ``ar`` format (``!<arch>\\n``, 60-byte member headers, 2-byte alignment).
Maintainer scripts inside ``control.tar`` are read as data and never run.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

import zstandard

from reprobuild.base.debian.deb822 import iter_stanzas
from reprobuild.errors import BaseImageError

_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60


def ar_members(data: bytes, origin: str) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, content)`` for each member of an ``ar`` archive."""
    if not data.startswith(_AR_MAGIC):
        raise BaseImageError(f"{origin} is not an ar archive (no `!<arch>` magic)", hint="the .deb is corrupt")
    pos = len(_AR_MAGIC)
    while pos < len(data):
        header = data[pos : pos + _AR_HEADER]
        if len(header) < _AR_HEADER or header[58:60] != b"`\n":
            raise BaseImageError(f"{origin}: bad ar member header at offset {pos}", hint="the .deb is corrupt")
        name = header[:16].decode("ascii", errors="replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise BaseImageError(f"{origin}: bad ar member size at offset {pos}") from None
        start = pos + _AR_HEADER
        end = start + size
        if end > len(data):
            raise BaseImageError(f"{origin}: ar member `{name}` is truncated", hint="the .deb is corrupt")
        yield name, data[start:end]
        pos = end + (size & 1)  # members are aligned to 2 bytes


def decompress_member(name: str, data: bytes, origin: str) -> bytes:
    """Decompress ``control.tar.*``/``data.tar.*`` by its suffix (xz, zst, gz, bz2 or none)."""
    try:
        if name.endswith(".xz"):
            return lzma.decompress(data)
        if name.endswith(".zst"):
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
            return bytes(reader.read())
        if name.endswith(".gz"):
            return gzip.decompress(data)
        if name.endswith(".bz2"):
            return bz2.decompress(data)
        if name.endswith(".tar"):
            return data
    except (lzma.LZMAError, zstandard.ZstdError, OSError, EOFError) as e:
        raise BaseImageError(f"{origin}: decompressing `{name}`: {e}", hint="the .deb is corrupt") from e
    raise BaseImageError(f"{origin}: `{name}` has an unknown compression", hint="see deb(5)")


@dataclass(frozen=True)
class DebMember:
    """One ``data.tar`` entry: the tar header and, for a regular file, its bytes."""

    info: tarfile.TarInfo
    data: bytes


@dataclass(frozen=True)
class Deb:
    """A read ``.deb``: its control fields (in file order), control files, and data entries."""

    control: tuple[tuple[str, str], ...]
    control_files: dict[str, bytes]
    members: tuple[DebMember, ...]

    def field(self, name: str) -> str:
        """A control field's value ('' when absent)."""
        return next((v for k, v in self.control if k == name), "")


def _tar_entries(raw: bytes, origin: str) -> Iterator[DebMember]:
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
            for info in tf:
                content = b""
                if info.isreg():
                    f = tf.extractfile(info)
                    assert f is not None
                    content = f.read()
                yield DebMember(info, content)
    except tarfile.TarError as e:
        raise BaseImageError(f"{origin}: reading its tar: {e}", hint="the .deb is corrupt") from e


def read_deb(data: bytes, origin: str) -> Deb:
    """Parse a ``.deb`` from its (already sha256-verified) bytes."""
    members = dict(ar_members(data, origin))
    version = members.get("debian-binary", b"").strip()
    if not version.startswith(b"2."):
        raise BaseImageError(f"{origin}: debian-binary is {version!r}, expected 2.x", hint="see deb(5)")
    control_name = next((n for n in members if n.startswith("control.tar")), None)
    data_name = next((n for n in members if n.startswith("data.tar")), None)
    if control_name is None or data_name is None:
        raise BaseImageError(f"{origin} has no control.tar or no data.tar member", hint="see deb(5)")
    control_files: dict[str, bytes] = {}
    for m in _tar_entries(decompress_member(control_name, members[control_name], origin), f"{origin} control"):
        if m.info.isreg():
            control_files[m.info.name.removeprefix("./")] = m.data
    if "control" not in control_files:
        raise BaseImageError(f"{origin}: control.tar has no `control` file", hint="see deb(5)")
    stanzas = list(iter_stanzas(control_files["control"].decode("utf-8"), f"{origin} control"))
    if len(stanzas) != 1:
        raise BaseImageError(f"{origin}: the control file has {len(stanzas)} stanzas, expected 1")
    entries = tuple(_tar_entries(decompress_member(data_name, members[data_name], origin), f"{origin} data"))
    return Deb(tuple(stanzas[0].items()), control_files, entries)
