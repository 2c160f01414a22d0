"""`repro-build image` vs `docker build` of the equivalent Dockerfile, same run, on the bundled example.

The peer is the Dockerfile `repro-build dockerfile` renders (same base, loaded in the engine; the same
locked wheels and the same project wheel in its build context; `docker build --network none` with
BuildKit from Debian's /usr/bin/docker) followed by `docker push` to a loopback registry. Both sides
start with the wheels on disk (our verified cache; the peer's build context), so neither downloads.

Measured (ratios ours/peer, lower is better for us):
  1. cold build + push (no previous layers: build dir removed, builder cache pruned, fresh registry);
  2. after a one-line app change, build + push (both keep what they had);
  3. cold build to a runnable image in the engine (`image --load` vs `docker build`);
  4. whether two cold builds give identical digests (ours: manifest digest; docker: image ID).

    python benchmarks/bench_image.py [--target cpu]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.foundation.helpers import git_commit  # noqa: E402
from tests.testbed import start_registry  # noqa: E402

DOCKER = "/usr/bin/docker"
CLI = [sys.executable, "-m", "reprobuild"]


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout.strip()


def timed(fn: Callable[[], str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


class Bench:
    """The example project, the engine-side base, and the two build paths."""

    def __init__(self, work: Path, target: str) -> None:
        self.work = work
        self.target = target
        self.project = work / "hello-ml"
        self.base_tag = "bench/base:latest"
        shutil.copytree(ROOT / "examples" / "hello-ml", self.project, ignore=shutil.ignore_patterns("build", "dist"))
        (self.project / ".gitignore").write_text("build/\ndist/\n")
        git_commit(self.project)

    def warm_up(self) -> dict[str, object]:
        """Fill the wheel and .deb caches, then load the base into the engine for the peer's FROM."""
        sh(*CLI, "image", "--project", str(self.project), "--target", self.target, "-q")
        manifest: dict[str, object] = json.loads((self.project / "build" / self.target / "manifest.json").read_text())
        base_layout = next((Path.home() / ".cache" / "repro-build" / "bases").glob("*/oci"))
        sh(*CLI, "copy", f"oci-layout:{base_layout}", f"docker-daemon:{self.base_tag}", "-q")
        return manifest

    def ours(self, *extra: str) -> str:
        return sh(*CLI, "image", "--project", str(self.project), "--target", self.target, "-q", *extra)

    def ours_cold(self, *extra: str) -> str:
        shutil.rmtree(self.project / "build", ignore_errors=True)
        shutil.rmtree(Path.home() / ".cache" / "repro-build" / "layers", ignore_errors=True)
        return self.ours(*extra)

    def peer_context(self) -> Path:
        ctx, dist = self.work / "ctx", self.work / "dist"
        shutil.rmtree(ctx, ignore_errors=True)
        shutil.rmtree(dist, ignore_errors=True)
        sh(*CLI, "wheel", "--project", str(self.project), "--out-dir", str(dist), "-q")
        wheel = next(dist.glob("*.whl"))
        cache = Path.home() / ".cache" / "repro-build" / "wheels"
        sh(
            *CLI,
            "dockerfile",
            "--project",
            str(self.project),
            "--target",
            self.target,
            "--base-image",
            self.base_tag,
            "--context",
            str(ctx),
            "--wheels-dir",
            str(cache),
            "--project-wheel",
            str(wheel),
        )
        return ctx

    def peer(self, tag: str, *, push: bool) -> str:
        ctx = self.peer_context()
        sh(DOCKER, "build", "-q", "--network", "none", "-t", tag, str(ctx), env={"DOCKER_BUILDKIT": "1"})
        image_id = sh(DOCKER, "image", "inspect", "--format", "{{.Id}}", tag)
        if push:
            sh(DOCKER, "push", "-q", tag)
        return image_id

    def app_change(self) -> None:
        module = self.project / "src" / "hello_ml" / "__init__.py"
        module.write_text(module.read_text() + "\n# a one-line app change\n")
        git_commit(self.project)


def measure(bench: Bench) -> tuple[dict[str, float], dict[str, list[str]]]:
    results: dict[str, float] = {}
    digests: dict[str, list[str]] = {"ours": [], "peer": []}
    for round_ in (1, 2):
        registry = start_registry()
        try:
            host = registry.registry.host
            ref_ours, ref_peer = f"{host}/ours:{bench.target}", f"{host}/peer:{bench.target}"
            t, out = timed(functools.partial(bench.ours_cold, "--push", ref_ours))
            digests["ours"].append(out.rsplit("@", 1)[1])
            results[f"ours cold build+push #{round_}"] = t
            sh(DOCKER, "builder", "prune", "-af")
            t, image_id = timed(functools.partial(bench.peer, ref_peer, push=True))
            digests["peer"].append(image_id)
            results[f"peer cold build+push #{round_}"] = t
            if round_ == 1:  # a one-line app change; both sides keep their caches and registry contents
                bench.app_change()
                t, _ = timed(functools.partial(bench.ours, "--push", ref_ours))
                results["ours app change build+push"] = t
                t, _ = timed(functools.partial(bench.peer, ref_peer, push=True))
                results["peer app change build+push"] = t
                subprocess.run(["git", "-C", str(bench.project), "reset", "-q", "--hard", "HEAD~1"], check=True)
        finally:
            registry.stop()
    sh(DOCKER, "builder", "prune", "-af")
    results["ours cold build --load"], _ = timed(lambda: bench.ours_cold("--load"))
    results["peer cold docker build"], _ = timed(lambda: bench.peer("bench/peer-load:latest", push=False))
    return results, digests


def report(manifest: dict[str, object], results: dict[str, float], digests: dict[str, list[str]], target: str) -> None:
    def ratio(a: str, b: str) -> float:
        return results[a] / results[b]

    outputs = manifest["outputs"]
    assert isinstance(outputs, dict)
    base = manifest["base"]
    assert isinstance(base, dict)
    print(
        f"example hello-ml target {target}; base {base['reference']} ({len(outputs['layers'])} layers); "
        f"{os.cpu_count()} CPUs"
    )
    for name, seconds in results.items():
        print(f"  {name:<34} {seconds:7.2f} s")
    ours = results["ours cold build+push #1"] + results["ours cold build+push #2"]
    peer = results["peer cold build+push #1"] + results["peer cold build+push #2"]
    print(f"  ratio cold build+push ours/peer    {ours / peer:.2f}x (goal <= 0.5x)")
    app = ratio("ours app change build+push", "peer app change build+push")
    print(f"  ratio app change build+push        {app:.2f}x (goal <= 1.0x)")
    load = ratio("ours cold build --load", "peer cold docker build")
    print(f"  ratio cold build to engine         {load:.2f}x (goal <= 1.0x)")
    for side, values in digests.items():
        same = len(set(values)) == 1
        print(f"  {side}: two cold builds identical: {same} ({', '.join(v[:19] for v in values)})")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="cpu")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-image-"))
    try:
        bench = Bench(work, args.target)
        manifest = bench.warm_up()
        results, digests = measure(bench)
        report(manifest, results, digests, args.target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
