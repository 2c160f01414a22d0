"""Blobs one at a time vs four at a time: ``remote.push`` and ``remote.pull`` to the loopback registry, same run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_parallel_push.py [--rounds 5]

Two image shapes, each built once into a staging blob store (incompressible layers, so every byte is
sent): "many small" (40 layers of 256 KiB: round trips dominate, as for a Python app's wheel layers)
and "few large" (4 layers of 48 MiB: bytes dominate). Each round pushes every shape with ``jobs=1``
and with ``jobs=4`` into fresh repositories of one loopback ``docker-registry`` (interleaved, the
order alternating from round to round), then pulls each back into an empty store the same way. It
prints the median and the spread of each, and the ratio parallel/sequential (below 1 means parallel
is faster). Every push must give the image's own digest and every pull the same one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.testbed import start_registry

from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image, default_config, new_image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.registry import CredentialStore, RegistryClient
from reprobuild.oci.remote import pull, push
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Platform

EPOCH = 1700000000
SHAPES = {"many small (40 x 256 KiB)": (40, 256 << 10), "few large (4 x 48 MiB)": (4, 48 << 20)}


def build(staging: Path, layers: int, size: int) -> Image:
    store = BlobStore(staging)
    built = [
        write_layer(
            [LayerEntry.file(f"/data/{i}.bin", os.urandom(size))],
            epoch=EPOCH,
            compressor=Compressor.none(),
            store=store,
        )
        for i in range(layers)
    ]
    return new_image(default_config(Platform("linux", "amd64"), EPOCH), built)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="repro-build-bench-par-"))
    proc = start_registry()
    try:
        client = RegistryClient(proc.registry.host, credentials=CredentialStore.anonymous())
        images = {name: build(work / f"staging-{i}", *shape) for i, (name, shape) in enumerate(SHAPES.items())}
        times: dict[tuple[str, str, int], list[float]] = {}
        for r in range(args.rounds):
            for name, image in images.items():
                for jobs in (1, 4) if r % 2 == 0 else (4, 1):
                    repo = f"bench/par-{uuid.uuid4().hex[:8]}"
                    start = time.perf_counter()
                    digest = push(client, repo, image, tags=["v1"], jobs=jobs)
                    times.setdefault((name, "push", jobs), []).append(time.perf_counter() - start)
                    assert digest == image.digest, (digest, image.digest)
                    store = work / f"pull-{jobs}"
                    start = time.perf_counter()
                    got = pull(client, repo, "v1", BlobStore(store), jobs=jobs)
                    times.setdefault((name, "pull", jobs), []).append(time.perf_counter() - start)
                    assert got.digest == image.digest, (got.digest, image.digest)
                    shutil.rmtree(store)
        print(f"{args.rounds} interleaved rounds, one loopback registry, fresh repositories; {os.cpu_count()} CPUs")
        for name in images:
            for op in ("push", "pull"):
                seq, par = times[(name, op, 1)], times[(name, op, 4)]
                print(
                    f"  {op} {name:28s} jobs=1 {statistics.median(seq):6.2f} s ({min(seq):.2f}-{max(seq):.2f})"
                    f"   jobs=4 {statistics.median(par):6.2f} s ({min(par):.2f}-{max(par):.2f})"
                    f"   ratio parallel/sequential {statistics.median(par) / statistics.median(seq):4.2f}x"
                )
        print("  every push gave the image's digest, every pull read it back: True")
    finally:
        proc.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
