"""Whole-image write of a ~250 MB Debian + Python rootfs: repro-build vs `skopeo copy`, same run.

Both sides start from the same content (the mmdebstrap minbase + python3 rootfs tar, cached by
tests/oci/rootfs.py) and end with an OCI layout holding one gzip layer:

- ours: canonical tar from the rootfs entries -> parallel gzip -> blob (+ diff_id, digest in the same
  pass) -> config + manifest -> layout (`write_layer` + `new_image` + `write_layout`).
- ours with other compressors (gzip level 1, zstd level 3, none) for context.
- skopeo: `skopeo copy oci:SRC oci:DST`, where SRC (prepared untimed) holds the same tar uncompressed;
  skopeo gzips it (containers/image's default for uncompressed layers) and writes the layout.

Run: ``.venv/bin/python benchmarks/bench_image_write.py [--rounds 2]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.oci.rootfs import ROOTFS_EPOCH, debian_rootfs

from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor, default_workers
from reprobuild.oci.image import default_config, new_image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.layout import write_layout
from reprobuild.oci.tarwriter import entries_from_tar
from reprobuild.oci.values import Platform


def ours(tar: Path, out: Path, compressor: Compressor) -> str:
    store = BlobStore(out)
    layer = write_layer(
        entries_from_tar(tar), epoch=ROOTFS_EPOCH, compressor=compressor, store=store, preserve_metadata=True
    )
    img = new_image(default_config(Platform("linux", "amd64"), ROOTFS_EPOCH), [layer])
    write_layout(out, img, tag="bench")
    return str(img.digest)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        sys.exit("skopeo is required: apt-get install -y skopeo")
    tar = debian_rootfs(variant="minbase", include=("python3",))
    mb = tar.stat().st_size / 1e6
    version = subprocess.run([skopeo, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f}")
    print(f"input: {tar.name} {mb:.1f} MB uncompressed; {version}; {default_workers()} CPUs; best of {args.rounds}")
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        root = Path(tmp)
        ours(tar, root / "src", Compressor.none())  # skopeo's input: same tar content, uncompressed
        timings: dict[str, float] = {}
        digests: dict[str, set[str]] = {"ours": set()}
        peers = {
            "ours": Compressor.gzip(),
            "ours gzip:1": Compressor.gzip(1),
            "ours zstd:3": Compressor.zstd(3),
            "ours none": Compressor.none(),
        }
        for r in range(args.rounds):
            for name in (*peers, "skopeo"):
                dst = root / f"r{r}"
                t = time.perf_counter()
                if name in peers:
                    d = ours(tar, dst, peers[name])
                    if name == "ours":
                        digests["ours"].add(d)
                else:
                    subprocess.run(
                        [skopeo, "copy", "--quiet", "oci:" + str(root / "src") + ":bench", f"oci:{dst}:bench"],
                        check=True,
                    )
                dt = time.perf_counter() - t
                timings[name] = min(timings.get(name, dt), dt)
                shutil.rmtree(dst)
        print(f"  load average (1 min) at end: {os.getloadavg()[0]:.2f}")
        for name, dt in timings.items():
            print(f"  {name:<12} {dt:6.2f} s  {mb / dt:6.1f} MB/s")
        for name in peers:
            print(f"  ratio skopeo/{name}: {timings['skopeo'] / timings[name]:.2f}x (>1 means ours is faster)")
        print(f"  ours gave the same manifest digest every round: {len(digests['ours']) == 1}")


if __name__ == "__main__":
    main()
