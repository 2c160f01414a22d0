"""`verify --image` (the pre-deploy gate) and the full `verify` rebuild, each against its peer, same run.

1. An image of >= 1 GB (one incompressible layer) in a loopback registry: the gate reads manifests
   only, so its time should not grow with the image; the peer is pulling the image (`skopeo copy` to
   an OCI layout, what a gate that re-hashes the content would have to do at least).
2. The bundled example's `cpu` image: `verify MANIFEST` (rebuild from the commit, no build caches)
   vs the original `repro-build image` with the same warm download caches.

    python benchmarks/bench_verify.py [--gib 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.foundation.helpers import git_commit  # noqa: E402
from tests.manifest.schemacheck import sample  # noqa: E402
from tests.testbed import start_registry  # noqa: E402

from reprobuild.oci.blobstore import BlobStore  # noqa: E402
from reprobuild.oci.compress import Compressor  # noqa: E402
from reprobuild.oci.image import default_config, new_image  # noqa: E402
from reprobuild.oci.layer import write_layer  # noqa: E402
from reprobuild.oci.layout import write_layout  # noqa: E402
from reprobuild.oci.tarwriter import LayerEntry  # noqa: E402
from reprobuild.oci.values import Platform  # noqa: E402

CLI = [sys.executable, "-m", "reprobuild"]


def run(*args: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(list(args), capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return took, out.stdout.strip()


def gate(work: Path, gib: float) -> list[str]:
    size = int(gib * (1 << 30))
    blob = work / "big.bin"
    with blob.open("wb") as f:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 1 << 24))
            f.write(chunk)
            remaining -= len(chunk)
    layer = write_layer(
        [LayerEntry.file("/data/big.bin", source=blob)],
        epoch=0,
        compressor=Compressor.none(),
        store=BlobStore(work / "layout"),
    )
    image = new_image(default_config(Platform("linux", "amd64"), 0), [layer])
    write_layout(work / "layout", image, tag="big")
    # The golden project's manifest, its outputs replaced by this image's: the gate reads only those.
    manifest = sample()
    manifest["outputs"].update(
        manifest_digest=str(image.digest),
        config_digest=str(image.config_digest),
        image_id=str(image.config_digest),
        layers=[{**manifest["outputs"]["layers"][0], "diff_id": str(layer.diff_id), "digest": str(layer.digest)}],
        platform="linux/amd64",
    )
    (work / "manifest.json").write_text(json.dumps(manifest))
    registry = start_registry()
    try:
        ref = f"{registry.registry.host}/bench/big:v1"
        run(*CLI, "copy", f"oci-layout:{work / 'layout'}:big", ref, "-q")
        gate_times = [run(*CLI, "verify", str(work / "manifest.json"), "--image", ref)[0] for _ in range(3)]
        pull = work / "pulled"
        shutil.rmtree(pull, ignore_errors=True)
        pull_time, _ = run("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"oci:{pull}:big")
    finally:
        registry.stop()
    best = min(gate_times)
    return [
        f"image: {layer.size / (1 << 30):.2f} GiB in one layer, loopback registry",
        f"  verify --image (whole CLI process, best of 3)   {best:7.3f} s  (goal < 1 s)",
        f"  skopeo copy of the image to an OCI layout       {pull_time:7.3f} s",
        f"  ratio pull/gate                                 {pull_time / best:7.1f}x",
    ]


def rebuild(work: Path) -> list[str]:
    project = work / "hello-ml"
    shutil.copytree(ROOT / "examples" / "hello-ml", project, ignore=shutil.ignore_patterns("build", "dist"))
    (project / ".gitignore").write_text("build/\ndist/\n")
    git_commit(project)
    run(*CLI, "image", "--project", str(project), "--target", "cpu", "-q")  # warm the download caches
    shutil.rmtree(project / "build")
    env_cache = Path.home() / ".cache" / "repro-build"
    shutil.rmtree(env_cache / "layers", ignore_errors=True)  # the original build starts without built layers too
    build_time, digest = run(*CLI, "image", "--project", str(project), "--target", "cpu", "-q")
    verify_time, out = run(*CLI, "verify", str(project / "build" / "cpu" / "manifest.json"))
    return [
        f"rebuild of hello-ml cpu ({digest[:19]}…): {out}",
        f"  repro-build image (no built layers cached)      {build_time:7.2f} s",
        f"  repro-build verify (checkout + rebuild, no layer cache) {verify_time:5.2f} s",
        f"  ratio verify/build                              {verify_time / build_time:7.2f}x (goal <= 1.2x)",
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        lines = gate(Path(tmp), args.gib) + rebuild(Path(tmp))
    print(f"{os.cpu_count()} CPUs")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
