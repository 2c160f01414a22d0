"""Opt-in: a PyTorch CPU image (time, size, layer count) and the determinism hook in it.

Needs a torch CPU wheel in a local find-links directory (``--find-links``, default /opt/wheels; uv is
pointed at it with ``UV_FIND_LINKS``), because the package index offers Linux torch only as the CUDA
build. The project pins ``torch==2.13.0+cpu``; its dependencies come from the package index. Measured:
the first build (wheels fetched into the cache), a rebuild with a warm wheel cache, no layer cache and
no ``UV_FIND_LINKS`` (the lock records where each wheel came from), the image size and layers, and, when
the Docker engine is up, whether ``import torch`` in the image has deterministic algorithms switched on
by the hook.

    python benchmarks/bench_torch_image.py [--find-links /opt/wheels] [--torch 2.13.0+cpu]
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

CLI = [sys.executable, "-m", "reprobuild"]
PYPROJECT = """\
[project]
name = "torch-app"
version = "1.0.0"
requires-python = ">=3.11"
dependencies = ["torch=={torch}"]

[build-system]
requires = ["hatchling==1.33.0"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/torch_app"]

[tool.repro-build]
python = "3.11"
entrypoint = ["python3", "-c", "import torch, torch_app; print(torch.are_deterministic_algorithms_enabled())"]

[tool.repro-build.targets.cpu]
base = "debian:bookworm"
flags = ["python", "torch", "mkl"]
"""


def run(*args: str, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(list(args), capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return time.perf_counter() - start, out.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--find-links", default="/opt/wheels")
    parser.add_argument("--torch", default="2.13.0+cpu")
    args = parser.parse_args()
    if not any(Path(args.find_links).glob(f"torch-{args.torch}-*.whl")):
        print(f"skipped: no torch-{args.torch} wheel in {args.find_links}")
        return 0
    env = {**os.environ, "UV_FIND_LINKS": args.find_links}
    with tempfile.TemporaryDirectory(prefix="bench-torch-") as tmp:
        project = Path(tmp) / "torch-app"
        (project / "src" / "torch_app").mkdir(parents=True)
        (project / "src" / "torch_app" / "__init__.py").write_text('"""A torch app."""\n')
        (project / "pyproject.toml").write_text(PYPROJECT.replace("{torch}", args.torch))
        (project / ".gitignore").write_text("build/\ndist/\n")
        run(*CLI, "lock", "--project", str(project), "-q", env=env)
        git_commit(project)
        first, digest = run(*CLI, "image", "--project", str(project), "-q", env=env)
        shutil.rmtree(project / "build")
        shutil.rmtree(Path.home() / ".cache" / "repro-build" / "layers", ignore_errors=True)
        # The lock records where every wheel came from: the rebuild needs no UV_FIND_LINKS (the torch
        # wheel is in the verified cache by sha256; its directory is outside the project, so not recorded).
        plain = {k: v for k, v in os.environ.items() if k != "UV_FIND_LINKS"}
        warm, again = run(*CLI, "image", "--project", str(project), "-q", env=plain)
        manifest = json.loads((project / "build" / "cpu" / "manifest.json").read_text())
        layers = manifest["outputs"]["layers"]
        print(f"torch {args.torch} CPU image on debian:bookworm; {os.cpu_count()} CPUs")
        print(f"  first build (wheels fetched into the cache)      {first:7.1f} s")
        print("  rebuild, warm wheel cache, no layer cache,")
        print(f"    and no UV_FIND_LINKS                           {warm:7.1f} s")
        print(f"  identical digests: {digest == again} ({digest[:19]}…)")
        print(f"  {len(layers)} layers, {sum(x['size'] for x in layers) / 1e6:.0f} MB compressed:")
        for layer in layers:
            print(f"    {layer['size'] / 1e6:8.1f} MB  {layer['holds']}")
        if (
            shutil.which("/usr/bin/docker")
            and subprocess.run(["/usr/bin/docker", "info"], capture_output=True, check=False).returncode == 0
        ):
            run(
                *CLI,
                "copy",
                f"oci-archive:{project / 'build' / 'cpu' / 'image.tar'}",
                "docker-daemon:bench/torch-app:cpu",
                "-q",
                env=env,
            )
            _, out = run("/usr/bin/docker", "run", "--rm", "--network", "none", "bench/torch-app:cpu", env=env)
            print(f"  in the engine, torch.are_deterministic_algorithms_enabled() after `import torch`: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
