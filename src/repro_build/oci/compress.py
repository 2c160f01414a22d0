"""Layer compression as part of the output format (DESIGN.md "Canonical forms", REFERENCE.md §2.7).

There is no canonical DEFLATE encoding, so the compressor is pinned and described:

``gzip``
    The input is cut into fixed 1 MiB blocks; each block is raw DEFLATE (RFC 1951) at a fixed level from
    a fresh compressor, ended with a sync flush (an empty stored block), so blocks concatenate into one
    valid DEFLATE stream; a final empty fixed-Huffman block with BFINAL closes it. One gzip header
    (RFC 1952: mtime 0, XFL 0, OS 255 "unknown") and a CRC-32 + ISIZE trailer over the whole input wrap
    it. Blocks are compressed on a thread pool (CPython's zlib releases the GIL); because every block is
    compressed independently and written in input order, the bytes do not depend on the worker count.
    They do depend on the zlib version, which :meth:`Compressor.describe` records.
``zstd``
    The ``zstandard`` library in multi-threaded mode (``threads >= 1``): zstd's job sizes follow the
    level and window, not the worker count, so 1, 2 and N workers give the same frame (checked by
    the tests; single-thread mode, ``threads=0``, gives different bytes and is never used).
``none``
    The tar as it is.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from repro_build.errors import OCIError
from repro_build.oci.mediatypes import Compression

#: Block size of the parallel gzip: large enough that per-block overhead stays under 1 percent,
#: small enough that 2 workers get work from a 2 MiB file. Part of the format: changing it changes bytes.
GZIP_BLOCK_SIZE = 1 << 20
#: zlib's default level: the usual speed/size trade-off, and what `docker push`/`gzip` use.
DEFAULT_GZIP_LEVEL = 6
#: zstd's default level.
DEFAULT_ZSTD_LEVEL = 3
#: RFC 1952 header: magic, CM=8 (deflate), FLG=0, MTIME=0, XFL=0, OS=255 (unknown), fixed so the
#: bytes do not depend on the host or the time.
_GZIP_HEADER = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"
#: Final empty fixed-Huffman block with BFINAL=1 (what ``flush(Z_FINISH)`` of an empty raw stream emits).
_DEFLATE_END = b"\x03\x00"


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class Sink(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


@dataclass(frozen=True)
class Compressor:
    """A pinned compression format: algorithm, level and (gzip) block size. Worker count is not part of it."""

    algorithm: Compression
    level: int | None = None
    block_size: int | None = None

    @classmethod
    def gzip(cls, level: int = DEFAULT_GZIP_LEVEL, block_size: int = GZIP_BLOCK_SIZE) -> Compressor:
        if not 1 <= level <= 9:
            raise OCIError(f"gzip level {level} is outside 1..9")
        return cls("gzip", level, block_size)

    @classmethod
    def zstd(cls, level: int = DEFAULT_ZSTD_LEVEL) -> Compressor:
        if not 1 <= level <= 22:
            raise OCIError(f"zstd level {level} is outside 1..22")
        return cls("zstd", level, None)

    @classmethod
    def none(cls) -> Compressor:
        return cls("none", None, None)

    @classmethod
    def parse(cls, name: str) -> Compressor:
        """``gzip``, ``gzip:9``, ``zstd``, ``zstd:19`` or ``none``."""
        algo, _, level = name.partition(":")
        try:
            if algo == "gzip":
                return cls.gzip(int(level) if level else DEFAULT_GZIP_LEVEL)
            if algo == "zstd":
                return cls.zstd(int(level) if level else DEFAULT_ZSTD_LEVEL)
        except ValueError as e:
            raise OCIError(f"compression {name!r}: level {level!r} is not an integer") from e
        if algo == "none" and not level:
            return cls.none()
        raise OCIError(f"unknown compression {name!r}", hint="use `gzip[:LEVEL]`, `zstd[:LEVEL]` or `none`")

    def describe(self) -> dict[str, Any]:
        """Everything the output bytes depend on, for the build manifest."""
        if self.algorithm == "gzip":
            return {
                "algorithm": "gzip",
                "implementation": "repro-build fixed-block parallel gzip (Python zlib)",
                "library": "zlib",
                "library_version": zlib.ZLIB_RUNTIME_VERSION,
                "level": self.level,
                "block_size": self.block_size,
            }
        if self.algorithm == "zstd":
            import zstandard

            return {
                "algorithm": "zstd",
                "implementation": "python-zstandard multi-threaded mode",
                "library": "zstandard",
                "library_version": zstandard.__version__,
                "c_library_version": ".".join(str(p) for p in zstandard.ZSTD_VERSION),
                "level": self.level,
                "block_size": None,
            }
        return {"algorithm": "none"}

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


def _deflate_block(block: bytes, level: int) -> bytes:
    # A fresh raw-deflate compressor per block (wbits=-15, memLevel 8 = zlib's default): no state is
    # shared between blocks, which is what makes the output independent of scheduling.
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
    return c.compress(block) + c.flush(zlib.Z_SYNC_FLUSH)


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
        self._crc = 0
        self._size = 0
        self._closed = False
        dst.write(_GZIP_HEADER)

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
        self._crc = zlib.crc32(block, self._crc)
        self._size += len(block)
        self._pending.append(self._pool.submit(_deflate_block, block, self._level))
        while len(self._pending) >= self._max_pending:
            self._dst.write(self._pending.popleft().result())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._buf:
                self._submit(bytes(self._buf))
                self._buf.clear()
            while self._pending:
                self._dst.write(self._pending.popleft().result())
            self._dst.write(_DEFLATE_END)
            # ISIZE is the input size modulo 2**32 (RFC 1952 §2.3.1).
            self._dst.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


class ZstdWriter:
    """zstd in multi-threaded mode (worker-count independent output; see the module docstring)."""

    def __init__(self, dst: Sink, level: int, workers: int) -> None:
        import zstandard

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
        import zstandard

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
    """A readable stream of the decompressed bytes of ``f``."""
    if compression == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard

        reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        return reader
    return f
