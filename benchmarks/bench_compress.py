"""Layer gzip: repro-build's pinned compressor vs single-thread zlib level 6, on real layer tars, one run.

Inputs (uncompressed tars, read into memory once so that disk speed is not measured):

- ``numpy layer``: numpy (a manylinux cp311 wheel with compiled extensions) installed by uv into a
  directory (cached under ~/.cache/repro-build-tests/, as the base-image tests do), written as one
  canonical layer tar by :func:`reprobuild.oci.layer.write_layer` with ``Compressor.none()``;
- ``Debian base layer``: the embedded Debian base (:func:`reprobuild.base.debian.build.build_base`,
  bookworm, the default package set, from the machine's apt mirror and the tests' .deb cache), also
  written uncompressed.

Peers, same input, same run, interleaved:

- ``zlib-6 single``: one ``zlib.compressobj(6, DEFLATED, 31)`` stream through Python's zlib (the host's
  libz; what Python's gzip module and repro-build before libdeflate did);
- ``zlib-ng-6``, ``isal-3`` (``zlib-ng`` / ``isal`` PyPI wheels, whole buffer, single thread) when
  installed: the candidates that were measured against libdeflate before choosing it;
- ``ours w1`` / ``ours wN``: :class:`reprobuild.oci.compress.Compressor` ``gzip`` (libdeflate level 6,
  1 MiB members) with 1 and N worker threads.

Reported per peer: wall time, CPU time, MB/s per core (input MB per CPU-second of this process, which
does not move when other processes compete for the cores), size and size vs zlib-6; then the issue's
goal: ours at least 2x zlib-6 per core at no more than 2 % larger output, and identical bytes for 1, 2
and N workers.

Run: ``.venv/bin/python benchmarks/bench_compress.py [--rounds 3]``
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reprobuild.base.debian.build import build_base
from reprobuild.base.debian.fetch import DebCache
from reprobuild.base.debian.lock import DEFAULT_PACKAGES, BaseInputs, make_lock
from reprobuild.base.debian.sources import default_mirror
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor, compress_bytes, default_workers
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.tarwriter import entries_from_tree
from reprobuild.uvbin import find_uv

CACHE = Path.home() / ".cache" / "repro-build-tests"
EPOCH = 1704164645


def _tar_of(layer: Layer) -> bytes:
    with layer.open_uncompressed() as f:
        return f.read()


def numpy_layer_tar(work: Path) -> bytes:
    tree = CACHE / "numpy-cp311-manylinux_2_28"
    if not (tree / "numpy" / "__init__.py").is_file():
        subprocess.run(
            [
                find_uv(), "pip", "install", "--quiet", "--target", str(tree), "--only-binary", ":all:",
                "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28", "numpy<2.3",
            ],
            check=True,
        )  # fmt: skip
    entries = entries_from_tree(tree, prefix="/opt/site")
    return _tar_of(write_layer(entries, epoch=EPOCH, compressor=Compressor.none(), store=BlobStore(work / "np")))


def debian_layer_tar(work: Path) -> bytes:
    cache = DebCache(CACHE / "debian")
    lock = make_lock(BaseInputs("bookworm", "amd64", default_mirror("bookworm"), tuple(DEFAULT_PACKAGES)), cache)
    built = build_base(lock, cache=cache, store=BlobStore(work / "deb"), compressor=Compressor.none())
    return _tar_of(built.image.layers[0])


def zlib_single(data: bytes, level: int = 6) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    out = [c.compress(data[i : i + (1 << 20)]) for i in range(0, len(data), 1 << 20)]
    out.append(c.flush())
    return b"".join(out)


def optional_peers(data: bytes) -> dict[str, Callable[[], bytes]]:
    peers: dict[str, Callable[[], bytes]] = {}
    try:
        from zlib_ng import zlib_ng

        def zng() -> bytes:
            c = zlib_ng.compressobj(6, zlib_ng.DEFLATED, 31)
            return bytes(c.compress(data) + c.flush())

        peers["zlib-ng-6 single"] = zng
    except ImportError:
        print("  (zlib-ng not installed: `uv pip install zlib-ng` to compare it)")
    try:
        from isal import isal_zlib

        def isal3() -> bytes:
            c = isal_zlib.compressobj(3, isal_zlib.DEFLATED, 31)
            return bytes(c.compress(data) + c.flush())

        peers["isal-3 single"] = isal3
    except ImportError:
        print("  (isal not installed: `uv pip install isal` to compare it)")
    return peers


def bench(name: str, data: bytes, rounds: int) -> bool:
    mb = len(data) / 1e6
    cpus = default_workers()
    print(f"input: {name}, {mb:.1f} MB uncompressed; {cpus} CPUs; best of {rounds} (interleaved)")
    c = Compressor.gzip()
    peers: dict[str, Callable[[], bytes]] = {"zlib-6 single": lambda: zlib_single(data)}
    peers.update(optional_peers(data))
    for w in sorted({1, 2, cpus}):
        peers[f"ours w{w}"] = lambda w=w: compress_bytes(data, c, workers=w)  # type: ignore[misc]
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    outs: dict[str, bytes] = {}
    for _ in range(rounds):
        for peer, fn in peers.items():
            t0, c0 = time.perf_counter(), time.process_time()
            outs[peer] = fn()
            wall[peer] = min(wall.get(peer, float("inf")), time.perf_counter() - t0)
            cpu[peer] = min(cpu.get(peer, float("inf")), time.process_time() - c0)
    ref = len(outs["zlib-6 single"])
    for peer in peers:
        size = len(outs[peer])
        print(
            f"  {peer:<16} {wall[peer]:6.2f} s wall {cpu[peer]:6.2f} s CPU  {mb / cpu[peer]:6.1f} MB/s per core"
            f"  {mb / wall[peer]:6.1f} MB/s wall  -> {size / 1e6:6.2f} MB ({(size / ref - 1) * 100:+.2f}%)"
        )
    assert gzip.decompress(outs["ours w1"]) == data
    same = len({hashlib.sha256(v).digest() for k, v in outs.items() if k.startswith("ours")}) == 1
    per_core = cpu["zlib-6 single"] / cpu["ours w1"]
    growth = len(outs["ours w1"]) / ref - 1
    ok = same and per_core >= 2 and growth <= 0.02
    print(f"  ours (1 MiB members): {compressor_line(c)}")
    print(f"  per core vs zlib-6: {per_core:.2f}x; size {growth * 100:+.2f}%; same bytes for all worker counts: {same}")
    print(f"  goal (>= 2x per core, <= +2% size, worker-independent): {'met' if ok else 'NOT met'}")
    return ok


def compressor_line(c: Compressor) -> str:
    d = c.describe()
    return f"libdeflate {d['library_version']} (deflate {d['package_version']}), level {d['level']}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"Python zlib (host libz) {zlib.ZLIB_RUNTIME_VERSION}; load average (1 min) at start {load:.2f}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        work = Path(tmp)
        for name, make in (("numpy layer", numpy_layer_tar), ("Debian base layer", debian_layer_tar)):
            ok &= bench(name, make(work), args.rounds)
    print(f"load average (1 min) at end {os.getloadavg()[0]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
