"""Fixed inputs whose compressed outputs are pinned: a layer, raw gzip/zstd streams, a wheel and an sdist.

:func:`digests` is what the golden test compares and what the swapped-libz subprocesses print
(``python -m tests.oci.compress_samples``), so every one of these outputs is checked against host
libraries it must not depend on. ``zlib_control`` is Python's own ``zlib`` on the same input: it
shows that the swapped library really is the one loaded (zlib-ng changes it), while nothing else moves.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from reprobuild.epoch import Epoch
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor, compress_bytes
from reprobuild.oci.layer import write_layer
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.wheel.canonical_sdist import canonicalize_sdist
from reprobuild.wheel.canonical_zip import canonicalize_wheel
from reprobuild.wheel.record import render_record

EPOCH = Epoch(1704164645, "config")  # 2024-01-02T03:04:05Z


def corpus(size: int, seed: int = 7) -> bytes:
    """Deterministic, moderately compressible data (text-like runs mixed with noise)."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 10))) for _ in range(500)]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=64)) + b"\n"
        out += rng.randbytes(rng.randint(0, 64))
    return bytes(out[:size])


def layer_entries() -> list[LayerEntry]:
    """About 3.5 MiB in 24 files: several 1 MiB gzip blocks, with block boundaries inside files."""
    entries = [LayerEntry.directory("opt/sample")]
    for i in range(24):
        entries.append(LayerEntry.file(f"opt/sample/f{i:02}.txt", corpus(150_000 + 731 * i, seed=100 + i)))
    entries.append(LayerEntry.symlink("opt/sample/latest", "f23.txt"))
    return entries


def sample_wheel() -> bytes:
    files = {
        "sample/__init__.py": corpus(40_000, seed=3),
        "sample/data.txt": corpus(300_000, seed=4),
        "sample-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: sample\nVersion: 1.0\n",
        "sample-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
        z.writestr("sample-1.0.dist-info/RECORD", render_record("sample-1.0.dist-info/RECORD", list(files.items())))
    return buf.getvalue()


def sample_sdist() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as t:
        for name, data in (("sample-1.0/PKG-INFO", b"Name: sample\n"), ("sample-1.0/big.txt", corpus(500_000, 5))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digests() -> dict[str, str]:
    """sha256 of each pinned output (see the module docstring)."""
    data = corpus(1 << 20, seed=1)
    control = zlib.compressobj(6, zlib.DEFLATED, -15)
    with tempfile.TemporaryDirectory() as tmp:
        layer = write_layer(layer_entries(), epoch=EPOCH, compressor=Compressor.gzip(), store=BlobStore(Path(tmp)))
        zlayer = write_layer(layer_entries(), epoch=EPOCH, compressor=Compressor.zstd(), store=BlobStore(Path(tmp)))
    return {
        "gzip_1mib": _sha(compress_bytes(data, Compressor.gzip())),
        "zstd_1mib": _sha(compress_bytes(data, Compressor.zstd())),
        "layer_gzip": str(layer.digest),
        "layer_zstd": str(zlayer.digest),
        "layer_diff_id": str(layer.diff_id),
        "wheel": _sha(canonicalize_wheel(sample_wheel(), EPOCH, "sample-1.0-py3-none-any.whl")),
        "sdist": _sha(canonicalize_sdist(sample_sdist(), EPOCH, "sample-1.0.tar.gz")),
        "zlib_control": _sha(control.compress(data) + control.flush()),
        "zlib_runtime": zlib.ZLIB_RUNTIME_VERSION,
    }


if __name__ == "__main__":
    json.dump(digests(), sys.stdout, sort_keys=True)
