"""Compression is part of the format: worker-count independence, standard decoders, golden bytes."""

from __future__ import annotations

import gzip
import hashlib
import random
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from repro_build.errors import OCIError
from repro_build.oci.compress import Compressor, compress_bytes


def _corpus(size: int, seed: int = 7) -> bytes:
    """Deterministic, moderately compressible data (text-like runs mixed with noise)."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 10))) for _ in range(500)]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=64)) + b"\n"
        out += rng.randbytes(rng.randint(0, 64))
    return bytes(out[:size])


DATA = _corpus(24 << 20)

#: sha256 of compress_bytes(_corpus(1 << 20, seed=1), Compressor.gzip()) with zlib 1.2.13 (Debian 12),
#: produced once by running this expression; the bytes depend on the zlib version, which
#: Compressor.describe() records, so a new zlib needs a new constant (and a new compatibility note).
GOLDEN_GZIP_1MIB = "2a2877997de33794875633206bb24847123d1adc6dc7d5cecdb64888b2ff9707"
#: Same input, Compressor.zstd() with zstandard 0.25.0 / libzstd 1.5.7.
GOLDEN_ZSTD_1MIB = "b9ad671a89d7d490e380058bd5e071267db360ebb4212d38fb68808a1f83776a"


@pytest.mark.parametrize("compressor", [Compressor.gzip(), Compressor.zstd()], ids=["gzip", "zstd"])
def test_bytes_do_not_depend_on_worker_count(compressor: Compressor) -> None:
    outs = {w: compress_bytes(DATA, compressor, workers=w) for w in (1, 2, 4)}
    assert outs[1] == outs[2] == outs[4]
    # More than one gzip block / zstd job was involved.
    assert len(DATA) > 8 * (1 << 20)


def test_gzip_is_decoded_by_gzip_binary_and_python(tmp_path: Path) -> None:
    out = compress_bytes(DATA, Compressor.gzip(), workers=2)
    assert gzip.decompress(out) == DATA
    assert zlib.decompress(out, 31) == DATA
    f = tmp_path / "x.gz"
    f.write_bytes(out)
    binary = shutil.which("gzip")
    assert binary, "gzip is part of every Debian system"
    got = subprocess.run([binary, "-dc", str(f)], capture_output=True, check=True).stdout
    assert hashlib.sha256(got).digest() == hashlib.sha256(DATA).digest()
    subprocess.run([binary, "-t", str(f)], check=True)


def test_zstd_is_decoded_by_zstd_binary(tmp_path: Path) -> None:
    out = compress_bytes(DATA, Compressor.zstd(), workers=2)
    f = tmp_path / "x.zst"
    f.write_bytes(out)
    binary = shutil.which("zstd")
    if binary is None:
        pytest.fail("zstd binary missing: `apt-get install -y zstd`")
    got = subprocess.run([binary, "-dc", str(f)], capture_output=True, check=True).stdout
    assert got == DATA
    assert zstandard.ZstdDecompressor().stream_reader(out).read() == DATA


def test_gzip_header_is_fixed_and_overhead_small() -> None:
    out = compress_bytes(DATA, Compressor.gzip(), workers=2)
    # magic, deflate, no flags, mtime 0, XFL 0, OS 255
    assert out[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    single = zlib.compressobj(6, zlib.DEFLATED, 31)
    reference = single.compress(DATA) + single.flush()
    assert len(out) < len(reference) * 1.01


def test_golden_compressed_digests() -> None:
    data = _corpus(1 << 20, seed=1)
    assert hashlib.sha256(compress_bytes(data, Compressor.gzip())).hexdigest() == GOLDEN_GZIP_1MIB
    assert hashlib.sha256(compress_bytes(data, Compressor.zstd())).hexdigest() == GOLDEN_ZSTD_1MIB


def test_describe_records_versions() -> None:
    g = Compressor.gzip().describe()
    assert g["library_version"] == zlib.ZLIB_RUNTIME_VERSION
    assert (g["level"], g["block_size"]) == (6, 1 << 20)
    z = Compressor.zstd(5).describe()
    assert z["library_version"] == zstandard.__version__ and z["level"] == 5 and z["c_library_version"]
    assert Compressor.none().describe() == {"algorithm": "none"}


def test_parse_rejects_unknown() -> None:
    assert Compressor.parse("gzip:9") == Compressor.gzip(9)
    assert Compressor.parse("zstd") == Compressor.zstd()
    with pytest.raises(OCIError, match="unknown compression"):
        Compressor.parse("brotli")
    with pytest.raises(OCIError):
        Compressor.parse("gzip:11")


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(max_size=20000),
    block=st.integers(min_value=1, max_value=5000),
    workers=st.integers(min_value=1, max_value=4),
)
def test_gzip_round_trip_any_block_size(data: bytes, block: int, workers: int) -> None:
    c = Compressor.gzip(level=6, block_size=block)
    out = compress_bytes(data, c, workers=workers)
    assert gzip.decompress(out) == data
    assert out == compress_bytes(data, c, workers=1)


@settings(max_examples=20, deadline=None)
@given(data=st.binary(max_size=50000), workers=st.integers(min_value=1, max_value=3))
def test_zstd_round_trip(data: bytes, workers: int) -> None:
    out = compress_bytes(data, Compressor.zstd(), workers=workers)
    assert zstandard.ZstdDecompressor().stream_reader(out).read() == data
