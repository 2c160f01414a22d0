"""Layer compression as part of the output format.

See docs/explanation/determinism.md, hazard 7 (compressor implementation and version).

There is no canonical DEFLATE encoding, so the compressor is pinned and described, and it never comes
from the host: Python's ``zlib`` links the system's libz (zlib 1.2.13 on Debian 12, 1.3.1 on Debian 13,
zlib-ng on Fedora 40+), whose bytes differ between implementations and versions.

``gzip``
    libdeflate, from the ``deflate`` wheel that bundles it statically (pinned with ``==`` in
    repro-build's dependencies; see :data:`PINNED_DEFLATE`). The input is cut into fixed 1 MiB blocks;
    each block becomes one complete gzip member (RFC 1952 §2.2: a gzip file is a series of members)
    made by ``libdeflate_gzip_compress`` at a fixed level: header with MTIME 0, XFL as libdeflate sets
    it for the level, OS 255 "unknown"; raw DEFLATE; CRC-32 and ISIZE of the block. The members are
    concatenated in input order. Blocks are compressed on a thread pool (the binding releases the GIL);
    every block is compressed independently, so the bytes do not depend on the worker count. libdeflate
    selects no code path by CPU feature when compressing (its SIMD code only fills and rebases match
    tables and computes checksums, with the same results everywhere), so the bytes depend only on the
    libdeflate version, the level and the block size, which :meth:`Compressor.describe` records.
``zstd``
    The ``zstandard`` library (which bundles libzstd statically; pinned with ``==`` too) in
    multi-threaded mode (``threads >= 1``): zstd's job sizes follow the level and window, not the worker
    count, so 1, 2 and N workers give the same frame (checked by the tests; single-thread mode,
    ``threads=0``, gives different bytes and is never used).
``none``
    The tar as it is.

Readers of multi-member gzip: :func:`open_decompressed` (Python's ``gzip`` reads every member, in
bounded memory), Go's ``compress/gzip`` (multistream by default: Docker, containerd, skopeo, umoci) and
GNU gzip. Python's ``tarfile`` in stream mode (``r|gz``) stops after the first member, so tar streams
are always decompressed by :func:`open_decompressed` first and opened with ``r|``.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import zstandard

from reprobuild.errors import OCIError
from reprobuild.oci.mediatypes import Compression

#: Block size of the parallel gzip: large enough that the 18-byte member header and trailer and the
#: dictionary restart cost stay small (1 MiB blocks are 0.1 % larger than 16 MiB ones on a Debian
#: rootfs tar), small enough that 2 workers get work from a 2 MiB file. Part of the format: changing it
#: changes bytes.
GZIP_BLOCK_SIZE = 1 << 20
#: The usual speed/size trade-off (libdeflate's default level too).
DEFAULT_GZIP_LEVEL = 6
#: libdeflate's levels: 1-9 like zlib, 10-12 its slower near-optimal parsing.
MAX_GZIP_LEVEL = 12
#: zstd's default level.
DEFAULT_ZSTD_LEVEL = 3
#: The highest zstd level whose frames need a window of at most 8 MiB: RFC 8878 §3.1.1.1.2 (the format the
#: OCI ``tar+zstd`` media type names) asks encoders not to exceed 8 MiB, which decoders must support. With
#: libzstd 1.5.7 (zstandard 0.25.0) level 19 uses window log 23 (8 MiB), 20 uses 25, 22 uses 27 (128 MiB).
MAX_ZSTD_LEVEL = 19
#: What reading a corrupt or truncated stream from :func:`open_decompressed` raises. Python's ``zlib``
#: only decodes here (inflate output is defined by RFC 1951, whatever the library), never encodes.
DECOMPRESS_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, ValueError, zlib.error, zstandard.ZstdError)
#: The ``deflate`` wheel repro-build pins (pyproject ``dependencies``) and the libdeflate it bundles.
#: The wheel does not report the C library's version at run time; this table does, from the binding's
#: source: ``deflate`` 0.9.0's ``libdeflate`` git submodule is commit c8c56a20 = tag v1.25 (its
#: CHANGELOG: "Updated bundled libdeflate to v1.25"). A new pin needs a new row and new golden digests.
PINNED_DEFLATE = "0.9.0"
LIBDEFLATE_OF_DEFLATE = {"0.9.0": "1.25"}


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class Sink(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


def _deflate_version() -> str:
    """The installed ``deflate``'s version, as its compiled module reports it (importing the module takes
    under a millisecond; reading the same from the package metadata took about 70)."""
    try:
        import deflate
    except ImportError as e:
        raise OCIError(
            "the compressor package 'deflate' is not installed",
            hint="reinstall repro-build with its dependencies (`pip install reprobuild`)",
        ) from e
    return str(deflate.__version__)


def libdeflate_versions() -> tuple[str, str]:
    """``(deflate package version, bundled libdeflate version)``; refuses a ``deflate`` other than the pin.

    Another version would write other bytes without a way to say which libdeflate made them.
    """
    package = _deflate_version()
    library = LIBDEFLATE_OF_DEFLATE.get(package)
    if library is None:
        raise OCIError(
            f"deflate {package} is installed, but repro-build's gzip output is defined by deflate=={PINNED_DEFLATE}",
            hint=f"install the pinned version: `pip install deflate=={PINNED_DEFLATE}` (or reinstall repro-build)",
        )
    return package, library


def _check_level(algorithm: str, level: int) -> None:
    levels = LEVELS[algorithm]
    assert levels is not None
    if isinstance(level, bool) or not isinstance(level, int) or not levels.low <= level <= levels.high:
        raise OCIError(
            f"{algorithm} level {level!r} is outside {levels.low}..{levels.high}",
            hint=f"{algorithm} takes levels {levels.low} to {levels.high} (default {levels.default})"
            + (
                "; higher levels need a window over 8 MiB, which RFC 8878 asks encoders not to use"
                if algorithm == "zstd"
                else ""
            ),
        )


def gzip_member(data: bytes, level: int) -> bytes:
    """One complete gzip member (header, raw DEFLATE, CRC-32, ISIZE) of ``data`` made by libdeflate.

    Header: MTIME 0, FLG 0, XFL 0 for levels 2-7 (4 below, 2 above), OS 255; nothing from the host.
    """
    import deflate

    return bytes(deflate.gzip_compress(data, level))


def raw_deflate(data: bytes, level: int) -> bytes:
    """Raw DEFLATE (RFC 1951) of ``data`` by libdeflate: one stream ending in a final block."""
    import deflate

    return bytes(deflate.deflate_compress(data, level))


@dataclass(frozen=True)
class Levels:
    """The levels an algorithm takes and the one it gets when none is given."""

    low: int
    high: int
    default: int


#: Every algorithm a layer can be compressed with, and its levels (``none`` takes none). The only
#: definition: the config, the command line and :meth:`Compressor.of` all check against it.
LEVELS: dict[str, Levels | None] = {
    # libdeflate's levels: 1-9 like zlib, 10-12 its slower near-optimal parsing.
    "gzip": Levels(1, MAX_GZIP_LEVEL, DEFAULT_GZIP_LEVEL),
    # Up to the window RFC 8878 asks encoders to stay within (see MAX_ZSTD_LEVEL).
    "zstd": Levels(1, MAX_ZSTD_LEVEL, DEFAULT_ZSTD_LEVEL),
    "none": None,
}


@dataclass(frozen=True)
class Compressor:
    """A pinned compression format and the library that writes it: everything the compressed bytes of a
    layer depend on besides the tar itself. Worker count is not part of it.

    Made once, where the format is chosen (:meth:`of`: the config's ``compression``, the command
    line's ``--compression``), and passed to whatever writes layers; the library versions are read
    when it is made, so a compressor that would write other bytes is refused before anything is
    written, and the build manifest records :meth:`describe` of the one that wrote the layers.
    """

    algorithm: Compression
    level: int | None = None
    block_size: int | None = None
    #: ``(field, value)`` pairs naming the implementation and the versions of its libraries.
    library: tuple[tuple[str, str], ...] = ()

    @classmethod
    def gzip(cls, level: int = DEFAULT_GZIP_LEVEL, block_size: int = GZIP_BLOCK_SIZE) -> Compressor:
        _check_level("gzip", level)
        package, library = libdeflate_versions()
        return cls(
            "gzip",
            level,
            block_size,
            (
                ("implementation", "repro-build fixed-block parallel gzip (one gzip member per block, libdeflate)"),
                ("library", "libdeflate"),
                ("library_version", library),
                ("package", "deflate"),
                ("package_version", package),
            ),
        )

    @classmethod
    def zstd(cls, level: int = DEFAULT_ZSTD_LEVEL) -> Compressor:
        _check_level("zstd", level)
        return cls(
            "zstd",
            level,
            None,
            (
                ("implementation", "python-zstandard multi-threaded mode"),
                ("library", "zstandard"),
                ("library_version", zstandard.__version__),
                ("c_library_version", ".".join(str(p) for p in zstandard.ZSTD_VERSION)),
            ),
        )

    @classmethod
    def none(cls) -> Compressor:
        return cls("none", None, None)

    @classmethod
    def of(cls, algorithm: str, level: int | None = None) -> Compressor:
        """The compressor for ``algorithm`` (a key of :data:`LEVELS`) at ``level`` (its default if None)."""
        if algorithm not in LEVELS:
            raise OCIError(
                f"unknown compression {algorithm!r}", hint=f"use one of: {', '.join(LEVELS)}, e.g. `gzip` or `zstd:9`"
            )
        if algorithm == "gzip":
            return cls.gzip(DEFAULT_GZIP_LEVEL if level is None else level)
        if algorithm == "zstd":
            return cls.zstd(DEFAULT_ZSTD_LEVEL if level is None else level)
        if level is not None:
            raise OCIError(f"compression {algorithm!r} takes no level, got {level}")
        return cls.none()

    @classmethod
    def parse(cls, name: str) -> Compressor:
        """``gzip``, ``gzip:9``, ``zstd``, ``zstd:19`` or ``none``."""
        algo, _, level = name.partition(":")
        try:
            return cls.of(algo, int(level) if level else None)
        except ValueError as e:
            raise OCIError(f"compression {name!r}: level {level!r} is not an integer") from e

    def describe(self) -> dict[str, Any]:
        """Everything the output bytes depend on, for the build manifest."""
        if self.algorithm == "none":
            return {"algorithm": "none"}
        return {"algorithm": self.algorithm, **dict(self.library), "level": self.level, "block_size": self.block_size}

    def writer(self, dst: Sink, workers: int | None = None) -> CompressingWriter:
        """A write-only stream that compresses into ``dst``; call ``close()`` to finish the stream."""
        n = workers if workers is not None else default_workers()
        if self.algorithm == "gzip":
            assert self.level is not None and self.block_size is not None
            return ParallelGzipWriter(dst, self.level, self.block_size, n)
        if self.algorithm == "zstd":
            assert self.level is not None
            return ZstdWriter(dst, self.level, n)
        return PlainWriter(dst)


class CompressingWriter(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def close(self) -> None: ...


class PlainWriter:
    """``none``: bytes pass through."""

    def __init__(self, dst: Sink) -> None:
        self._dst = dst

    def write(self, data: bytes, /) -> int:
        self._dst.write(data)
        return len(data)

    def close(self) -> None:
        pass


class ParallelGzipWriter:
    """Fixed-block parallel gzip (see the module docstring). Holds at most ``2 * workers`` blocks in flight."""

    def __init__(self, dst: Sink, level: int, block_size: int, workers: int) -> None:
        self._dst = dst
        self._level = level
        self._block_size = block_size
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="gzip")
        self._max_pending = 2 * max(1, workers)
        self._pending: deque[Future[bytes]] = deque()
        self._buf = bytearray()
        self._members = 0
        self._closed = False

    def write(self, data: bytes, /) -> int:
        if self._closed:
            raise ValueError("write to a closed gzip writer")
        # Cut blocks straight from ``data`` (a memoryview, no copy of the rest), buffering only a tail.
        mv = memoryview(data)
        size = self._block_size
        if self._buf:
            take = size - len(self._buf)
            self._buf += mv[:take]
            mv = mv[take:]
            if len(self._buf) < size:
                return len(data)
            self._submit(bytes(self._buf))
            self._buf = bytearray()
        while len(mv) >= size:
            self._submit(bytes(mv[:size]))
            mv = mv[size:]
        self._buf += mv
        return len(data)

    def _submit(self, block: bytes) -> None:
        self._members += 1
        self._pending.append(self._pool.submit(gzip_member, block, self._level))
        while len(self._pending) >= self._max_pending:
            self._dst.write(self._pending.popleft().result())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # Empty input still gives one (empty) member: a zero-byte file is not gzip.
            if self._buf or self._members == 0:
                self._submit(bytes(self._buf))
                self._buf.clear()
            while self._pending:
                self._dst.write(self._pending.popleft().result())
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


class ZstdWriter:
    """zstd in multi-threaded mode (worker-count independent output; see the module docstring)."""

    def __init__(self, dst: Sink, level: int, workers: int) -> None:
        # threads >= 1 selects zstd's multi-threaded encoder whose output does not depend on the count;
        # no content size in the frame header because the stream length is not known up front.
        self._cctx = zstandard.ZstdCompressor(level=level, threads=max(1, workers), write_checksum=True)
        self._writer = self._cctx.stream_writer(dst, closefd=False)  # type: ignore[arg-type]
        self._closed = False

    def write(self, data: bytes, /) -> int:
        self._writer.write(data)
        return len(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.flush(zstandard.FLUSH_FRAME)
        self._writer.close()  # type: ignore[no-untyped-call]


def compress_bytes(data: bytes, compressor: Compressor, workers: int | None = None) -> bytes:
    """Compress ``data`` in memory (small inputs and tests)."""
    out = bytearray()

    class _Buf:
        def write(self, b: bytes, /) -> int:
            out.extend(b)
            return len(b)

    w = compressor.writer(_Buf(), workers)
    w.write(data)
    w.close()
    return bytes(out)


def open_decompressed(f: BinaryIO, compression: Compression) -> BinaryIO:
    """A readable stream of the decompressed bytes of ``f``, in bounded memory.

    gzip: every member of a multi-member file is read (Python's ``gzip`` continues after each member's
    trailer), so this reads layers written by :class:`ParallelGzipWriter` and by any other tool.
    """
    if compression == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        return reader
    return f


#: Leading bytes of each compressed format (RFC 1952 ID1 ID2; RFC 8878 zstd frame magic).
_MAGIC: tuple[tuple[bytes, Compression], ...] = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"))


class _Prefixed:
    """``head`` followed by the rest of ``f``: a stream whose first bytes were read to sniff its format."""

    def __init__(self, head: bytes, f: BinaryIO) -> None:
        self._head = head
        self._f = f

    def read(self, n: int = -1, /) -> bytes:
        if not self._head:
            return self._f.read(n)
        if n < 0:
            head, self._head = self._head, b""
            return head + self._f.read()
        head, self._head = self._head[:n], self._head[n:]
        return head + (self._f.read(n - len(head)) if len(head) < n else b"")


def open_sniffed(f: BinaryIO) -> BinaryIO:
    """The decompressed stream of ``f``, whose format (gzip, zstd or a plain tar) is read from its first bytes."""
    head = f.read(4)
    while 0 < len(head) < 4:
        more = f.read(4 - len(head))
        if not more:
            break
        head += more
    compression: Compression = next((c for magic, c in _MAGIC if head.startswith(magic)), "none")
    return open_decompressed(_Prefixed(head, f), compression)  # type: ignore[arg-type]
