"""Embedded Debian base vs mmdebstrap, same package set, same run, both from a warm download cache.

Ours: ``build_base`` from the lock (read the pinned .debs from the sha256 cache, unpack in Python,
write one canonical gzip layer). Peer: ``mmdebstrap --variant=essential --include=<the same
requested packages>`` to a tar, with SOURCE_DATE_EPOCH, its apt archive cache synced in and out by
hooks so it downloads nothing after the warm-up. (``--variant=custom`` with the same set resolves
to exactly the packages of our lock but cannot install them: dpkg needs /bin/sh for the
maintainer scripts, which this package set lacks.) Each side is run once untimed (to warm its cache)
and then ``--runs`` times; the median is reported with the ratio, the sizes, and whether repeated
outputs were bit-identical.

    .venv/bin/python benchmarks/bench_debian_base.py [--runs 2] [--suite bookworm] [--mirror URL]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reprobuild.base.debian.build import build_base
from reprobuild.base.debian.deb822 import iter_stanzas
from reprobuild.base.debian.fetch import DebCache
from reprobuild.base.debian.lock import DEFAULT_PACKAGES, BaseInputs, BaseLock, make_lock
from reprobuild.base.debian.sources import default_mirror
from reprobuild.oci.blobstore import BlobStore
from reprobuild.urls import redact


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def mmdebstrap(suite: str, mirror: str, packages: list[str], out: Path, *, apt_cache: Path, epoch: int) -> float:
    cmd = [
        "mmdebstrap", "--quiet", "--variant=essential", f"--include={','.join(packages)}",
        "--skip=essential/unlink",
        "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
        f"--setup-hook=sync-in {apt_cache} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {apt_cache}",
        suite, str(out), mirror,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)})
    return time.perf_counter() - start


def run_ours(lock: BaseLock, cache: DebCache, work: Path, runs: int) -> tuple[list[float], set[str], int, int]:
    """Build ``runs + 1`` times (the first warms the cache, untimed): times, digests, layer sizes."""
    times: list[float] = []
    digests: set[str] = set()
    layer_size = diff_size = 0
    for i in range(runs + 1):
        start = time.perf_counter()
        built = build_base(lock, cache=cache, store=BlobStore(work / f"blobs{i}"))
        elapsed = time.perf_counter() - start
        if i:
            times.append(elapsed)
        digests.add(str(built.image.digest))
        layer_size = built.image.layers[0].size
        with built.image.layers[0].open_uncompressed() as f:
            diff_size = 0
            while chunk := f.read(1 << 20):
                diff_size += len(chunk)
    return times, digests, layer_size, diff_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--arch", default="amd64")
    parser.add_argument("--mirror", default=None)
    args = parser.parse_args()
    if shutil.which("mmdebstrap") is None:
        print("mmdebstrap is not installed: `apt-get install -y mmdebstrap`", file=sys.stderr)
        return 2
    mirror = args.mirror or default_mirror(args.suite)
    work = Path(tempfile.mkdtemp(prefix="bench-debian-base-"))
    try:
        cache = DebCache(work / "cache")
        packages = list(DEFAULT_PACKAGES)
        lock = make_lock(BaseInputs(args.suite, args.arch, mirror, tuple(packages)), cache)
        epoch = lock.release_epoch
        source = redact(args.mirror) if args.mirror else "the machine's apt mirror"
        print(f"suite {args.suite}/{args.arch} from {source}; {os.cpu_count()} CPUs; epoch {epoch}")
        print(f"requested: {' '.join(packages)}; locked: {len(lock.packages)} packages")

        ours, digests, layer_size, diff_size = run_ours(lock, cache, work, args.runs)

        theirs: list[float] = []
        tar_hashes: set[str] = set()
        apt_cache = work / "apt-archives"
        apt_cache.mkdir()
        tar_size = 0
        mm_packages: list[str] = []
        for i in range(args.runs + 1):
            out = work / f"mm{i}.tar"
            elapsed = mmdebstrap(args.suite, mirror, packages, out, apt_cache=apt_cache, epoch=epoch)
            if i:
                theirs.append(elapsed)
            tar_hashes.add(sha256_file(out))
            tar_size = out.stat().st_size
            if not mm_packages:
                status = subprocess.run(
                    ["tar", "-xOf", str(out), "./var/lib/dpkg/status"], capture_output=True, text=True, check=True
                ).stdout
                mm_packages = sorted(s["Package"] for s in iter_stanzas(status, "status"))
            out.unlink()

        ours_med, theirs_med = statistics.median(ours), statistics.median(theirs)
        locked = {p.name for p in lock.packages}
        print(f"  ours: base build from warm cache   {ours_med:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ours)})")
        print(
            f"  mmdebstrap essential, warm cache   {theirs_med:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in theirs)})"
        )
        print(f"  ratio mmdebstrap/ours              {theirs_med / ours_med:7.1f}x")
        print(f"  ours: layer {layer_size / 1e6:.1f} MB gzip, {diff_size / 1e6:.1f} MB uncompressed tar; "
              f"bit-identical across runs: {len(digests) == 1} ({next(iter(digests))})")  # fmt: skip
        print(f"  mmdebstrap: {tar_size / 1e6:.1f} MB uncompressed tar, {len(mm_packages)} packages; "
              f"bit-identical across runs: {len(tar_hashes) == 1}")  # fmt: skip
        extra = sorted(set(mm_packages) - locked)
        print(f"  mmdebstrap has {len(extra)} packages ours leaves out: {' '.join(extra)}")
        print(f"  ours has {len(locked - set(mm_packages))} packages mmdebstrap leaves out")
        print("  python:3.11-slim published size: not looked up (no registry reachable from this machine)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
