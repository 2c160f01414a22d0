"""Compression is part of the format: worker-count independence, standard decoders, golden bytes."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import shutil
import subprocess
import tarfile
import zlib
from importlib import metadata
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from reprobuild.errors import OCIError
from reprobuild.oci import compress
from reprobuild.oci.compress import (
    LEVELS,
    LIBDEFLATE_OF_DEFLATE,
    PINNED_DEFLATE,
    Compressor,
    compress_bytes,
    open_decompressed,
    open_sniffed,
)
from reprobuild.oci.safetar import iter_layer_entries
from tests.oci.compress_samples import corpus


@pytest.fixture(scope="module")
def sample() -> bytes:
    """24 MiB of sample data (many 1 MiB gzip blocks), made once for the tests that use it, never at import."""
    return corpus(24 << 20)


@pytest.mark.parametrize("compressor", [Compressor.gzip(), Compressor.zstd()], ids=["gzip", "zstd"])
def test_bytes_do_not_depend_on_worker_count(compressor: Compressor, sample: bytes) -> None:
    outs = {w: compress_bytes(sample, compressor, workers=w) for w in (1, 2, 4)}
    assert outs[1] == outs[2] == outs[4]
    # More than one gzip block / zstd job was involved.
    assert len(sample) > 8 * (1 << 20)


def _members(out: bytes) -> list[bytes]:
    """The gzip members of ``out`` (each decoded by a fresh zlib decompressor that stops at its trailer)."""
    members = []
    while out:
        d = zlib.decompressobj(31)
        members.append(d.decompress(out))
        assert d.eof, "a member is truncated"
        out = d.unused_data
    return members


def test_gzip_is_one_member_per_block_decoded_by_gzip_binary_and_python(tmp_path: Path, sample: bytes) -> None:
    out = compress_bytes(sample, Compressor.gzip(), workers=2)
    assert gzip.decompress(out) == sample
    members = _members(out)
    assert len(members) == -(-len(sample) // (1 << 20))
    assert all(len(m) == 1 << 20 for m in members[:-1]) and b"".join(members) == sample
    f = tmp_path / "x.gz"
    f.write_bytes(out)
    binary = shutil.which("gzip")
    assert binary, "gzip is part of every Debian system"
    got = subprocess.run([binary, "-dc", str(f)], capture_output=True, check=True).stdout
    assert hashlib.sha256(got).digest() == hashlib.sha256(sample).digest()
    subprocess.run([binary, "-t", str(f)], check=True)


def test_zstd_is_decoded_by_zstd_binary(tmp_path: Path, sample: bytes) -> None:
    out = compress_bytes(sample, Compressor.zstd(), workers=2)
    f = tmp_path / "x.zst"
    f.write_bytes(out)
    binary = shutil.which("zstd")
    if binary is None:
        pytest.fail("zstd binary missing: `apt-get install -y zstd`")
    got = subprocess.run([binary, "-dc", str(f)], capture_output=True, check=True).stdout
    assert got == sample
    assert zstandard.ZstdDecompressor().stream_reader(out).read() == sample


def test_gzip_header_is_fixed_and_overhead_small(sample: bytes) -> None:
    out = compress_bytes(sample, Compressor.gzip(), workers=2)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # magic, deflate, no flags, mtime 0, XFL 0, OS 255
    assert out[:10] == header
    assert out.count(header) >= len(sample) >> 20  # every member has the same fixed header
    # Against one zlib-6 stream over everything (no block restarts): not larger, with the member overhead.
    single = zlib.compressobj(6, zlib.DEFLATED, 31)
    reference = single.compress(sample) + single.flush()
    assert len(out) < len(reference) * 1.01


def test_describe_records_versions() -> None:
    g = Compressor.gzip().describe()
    assert (g["library"], g["package"]) == ("libdeflate", "deflate")
    assert g["package_version"] == metadata.version("deflate") == PINNED_DEFLATE
    assert g["library_version"] == LIBDEFLATE_OF_DEFLATE[PINNED_DEFLATE]
    assert (g["level"], g["block_size"]) == (6, 1 << 20)
    z = Compressor.zstd(5).describe()
    assert z["library_version"] == zstandard.__version__ and z["level"] == 5 and z["c_library_version"]
    assert Compressor.none().describe() == {"algorithm": "none"}


def test_one_table_of_levels_for_every_entry_point() -> None:
    """The config, `--compression` and the factories all take their limits from ``LEVELS``."""
    for algorithm, levels in LEVELS.items():
        if levels is None:
            assert Compressor.of(algorithm) == Compressor.none()
            continue
        assert Compressor.of(algorithm).level == levels.default
        assert Compressor.parse(f"{algorithm}:{levels.high}").level == levels.high
        for bad in (levels.low - 1, levels.high + 1):
            with pytest.raises(OCIError, match=re.escape(f"outside {levels.low}..{levels.high}")):
                Compressor.parse(f"{algorithm}:{bad}")
    with pytest.raises(OCIError, match="takes no level"):
        Compressor.of("none", 1)


def test_library_versions_are_read_when_the_compressor_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compressor records the libraries it was made with, and an unpinned libdeflate is refused at once,
    before any layer is written."""
    made = Compressor.gzip()
    monkeypatch.setattr(compress, "_deflate_version", lambda: "0.8.1")
    with pytest.raises(OCIError, match=re.escape("deflate 0.8.1 is installed")):
        Compressor.gzip()
    assert made.describe()["package_version"] == PINNED_DEFLATE  # what was read when it was made


def test_parse_rejects_unknown() -> None:
    assert Compressor.parse("gzip:9") == Compressor.gzip(9)
    assert Compressor.parse("zstd") == Compressor.zstd()
    with pytest.raises(OCIError, match="unknown compression"):
        Compressor.parse("brotli")
    assert Compressor.parse("gzip:12") == Compressor.gzip(12)  # libdeflate's near-optimal levels
    with pytest.raises(OCIError):
        Compressor.parse("gzip:13")


def test_an_unpinned_deflate_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import deflate

    monkeypatch.setattr(deflate, "__version__", "9.9.9")
    with pytest.raises(OCIError, match=r"deflate 9\.9\.9 is installed") as e:
        Compressor.gzip().writer(io.BytesIO())
    assert f"deflate=={PINNED_DEFLATE}" in (e.value.hint or "")


def _tar() -> bytes:
    """A 4 MiB tar of six files (several gzip members, boundaries inside files)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for i in range(6):
            body = corpus(700_000, seed=i)
            info = tarfile.TarInfo(f"f{i}")
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    return raw.getvalue()


@pytest.mark.parametrize("compressor", [Compressor.gzip(), Compressor.zstd(), Compressor.none()], ids=str)
def test_layer_tar_streams_read_across_members(compressor: Compressor) -> None:
    """tarfile's own stream mode stops after the first gzip member; our readers must not."""
    data = _tar()
    out = compress_bytes(data, compressor, workers=2)
    assert open_decompressed(io.BytesIO(out), compressor.algorithm).read() == data
    entries = [(e.path, e.open().read() if e.open else b"") for e in iter_layer_entries(io.BytesIO(out), artifact="x")]
    assert [p for p, _ in entries] == [f"f{i}" for i in range(6)]
    assert entries[5][1] == corpus(700_000, seed=5)
    assert open_sniffed(io.BytesIO(out)).read() == data


def test_truncated_multi_member_gzip_is_one_clear_error() -> None:
    out = compress_bytes(_tar(), Compressor.gzip())
    with pytest.raises(OCIError, match="reading the layer tar failed"):
        list(iter_layer_entries(io.BytesIO(out[: len(out) // 2]), artifact="x"))


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
