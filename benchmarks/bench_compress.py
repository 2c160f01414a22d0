"""Parallel fixed-block gzip vs single-thread zlib at the same level, on a >= 200 MB layer, same run.

Input: the uncompressed tar of a Debian bookworm minbase + python3 rootfs built by mmdebstrap
(cached under ~/.cache/repro-build-tests/, see tests/oci/rootfs.py), read into memory once so that
disk speed is not measured. Peers:

- ``zlib single``: one ``zlib.compressobj(level, DEFLATED, 31)`` stream (what Python's gzip module does).
- ``ours wN``: :class:`repro_build.oci.compress.ParallelGzipWriter` with N workers (bytes identical for every N).

Wall time is the goal (>= 1.6x on 2 idle cores); CPU time is printed too, since it shows the cost
per byte (equal for all peers) even when other processes compete for the cores.

Run: ``.venv/bin/python benchmarks/bench_compress.py [--rounds 3] [--level 6]``
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.oci.rootfs import debian_rootfs

from repro_build.oci.compress import Compressor, compress_bytes, default_workers


def zlib_single(data: bytes, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    out = [c.compress(data[i : i + (1 << 20)]) for i in range(0, len(data), 1 << 20)]
    out.append(c.flush())
    return b"".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--level", type=int, default=6)
    args = ap.parse_args()
    tar = debian_rootfs(variant="minbase", include=("python3",))
    data = tar.read_bytes()
    mb = len(data) / 1e6
    cpus = default_workers()
    load = os.getloadavg()[0]
    print(f"input: {tar.name} {mb:.1f} MB, level {args.level}, {cpus} CPUs, best of {args.rounds} (interleaved)")
    peers: dict[str, Callable[[], bytes]] = {"zlib single-thread": lambda: zlib_single(data, args.level)}
    for w in sorted({1, 2, cpus}):
        c = Compressor.gzip(args.level)
        peers[f"ours parallel gzip w{w}"] = lambda c=c, w=w: compress_bytes(data, c, workers=w)  # type: ignore[misc]
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    outs: dict[str, bytes] = {}
    for _ in range(args.rounds):
        # Peers alternate within each round, so load from other processes hits them alike.
        for name, fn in peers.items():
            wall, cpu_start = time.perf_counter(), time.process_time()
            outs[name] = fn()
            times[name] = min(times.get(name, float("inf")), time.perf_counter() - wall)
            cpu[name] = min(cpu.get(name, float("inf")), time.process_time() - cpu_start)
    ref_name = "zlib single-thread"
    ref = outs[ref_name]
    for name, t in times.items():
        extra = "" if name == ref_name else f"  ({(len(outs[name]) / len(ref) - 1) * 100:+.2f}% size)"
        print(
            f"  {name:<26} {t:6.2f} s wall {cpu[name]:6.2f} s CPU  {mb / t:6.1f} MB/s"
            f"  -> {len(outs[name]) / 1e6:.1f} MB{extra}"
        )
    ours = {hashlib.sha256(v).hexdigest() for k, v in outs.items() if k != ref_name}
    assert gzip.decompress(outs["ours parallel gzip w1"]) == data
    print(f"  identical bytes for all worker counts: {len(ours) == 1}")
    for name, t in times.items():
        if name != ref_name:
            print(f"  speed-up vs zlib single-thread, {name}: {times[ref_name] / t:.2f}x")
    print(f"  load average (1 min) at start / end: {load:.2f} / {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
