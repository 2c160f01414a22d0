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
from tests.testbed import start_registry  # noqa: E402

DOCKER = "/usr/bin/docker"
CLI = [sys.executable, "-m", "repro_build"]


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout.strip()


def timed(fn: object) -> tuple[float, str]:
    start = time.perf_counter()
    result = fn()  # type: ignore[operator]
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="cpu")
    args = parser.parse_args()
    target = args.target
    work = Path(tempfile.mkdtemp(prefix="bench-image-"))
    try:
        project = work / "hello-ml"
        shutil.copytree(ROOT / "examples" / "hello-ml", project, ignore=shutil.ignore_patterns("build", "dist"))
        (project / ".gitignore").write_text("build/\ndist/\nctx/\n")
        git_commit(project)
        base_tag = "bench/base:latest"

        # Warm-up (untimed): fill the wheel and .deb caches and learn the base, then load the base into
        # the engine for the peer's FROM.
        sh(*CLI, "image", "--project", str(project), "--target", target, "-q")
        manifest = json.loads((project / "build" / target / "manifest.json").read_text())
        base_layout = next(p for p in (Path.home() / ".cache" / "repro-build" / "bases").glob("*/oci"))
        sh(*CLI, "copy", f"oci-layout:{base_layout}", f"docker-daemon:{base_tag}", "-q")

        def peer_context() -> Path:
            ctx = work / "ctx"
            shutil.rmtree(ctx, ignore_errors=True)
            dist = work / "dist"
            shutil.rmtree(dist, ignore_errors=True)
            sh(*CLI, "wheel", "--project", str(project), "--out-dir", str(dist), "-q")
            wheel = next(dist.glob("*.whl"))
            cache = Path.home() / ".cache" / "repro-build" / "wheels"
            sh(
                *CLI,
                "dockerfile",
                "--project",
                str(project),
                "--target",
                target,
                "--base-image",
                base_tag,
                "--context",
                str(ctx),
                "--wheels-dir",
                str(cache),
                "--project-wheel",
                str(wheel),
            )
            return ctx

        def peer_build(tag: str) -> str:
            ctx = peer_context()
            sh(DOCKER, "build", "-q", "--network", "none", "-t", tag, str(ctx), env={"DOCKER_BUILDKIT": "1"})
            return sh(DOCKER, "image", "inspect", "--format", "{{.Id}}", tag)

        def prune() -> None:
            sh(DOCKER, "builder", "prune", "-af")

        results: dict[str, float] = {}
        digests: dict[str, list[str]] = {"ours": [], "peer": []}

        for round_ in (1, 2):
            registry = start_registry()
            try:
                host = registry.registry.host
                shutil.rmtree(project / "build", ignore_errors=True)
                t, out = timed(
                    lambda h=host: sh(
                        *CLI,
                        "image",
                        "--project",
                        str(project),
                        "--target",
                        target,
                        "-q",
                        "--push",
                        f"{h}/ours:{target}",
                    )
                )
                digests["ours"].append(out.rsplit("@", 1)[1])
                results[f"ours cold build+push #{round_}"] = t
                prune()
                tag = f"{host}/peer:{target}"

                def peer_cold(tag: str = tag) -> str:
                    image_id = peer_build(tag)
                    sh(DOCKER, "push", "-q", tag)
                    return image_id

                t, image_id = timed(peer_cold)
                digests["peer"].append(image_id)
                results[f"peer cold build+push #{round_}"] = t
                if round_ == 1:
                    # One-line app change, both sides keep their caches and registry contents.
                    module = project / "src" / "hello_ml" / "__init__.py"
                    module.write_text(module.read_text() + "\n# a one-line app change\n")
                    git_commit(project)
                    t, _ = timed(
                        lambda h=host: sh(
                            *CLI,
                            "image",
                            "--project",
                            str(project),
                            "--target",
                            target,
                            "-q",
                            "--push",
                            f"{h}/ours:{target}",
                        )
                    )
                    results["ours app change build+push"] = t
                    t, _ = timed(peer_cold)
                    results["peer app change build+push"] = t
                    subprocess.run(["git", "-C", str(project), "reset", "-q", "--hard", "HEAD~1"], check=True)
            finally:
                registry.stop()

        shutil.rmtree(project / "build", ignore_errors=True)
        prune()
        t, _ = timed(lambda: sh(*CLI, "image", "--project", str(project), "--target", target, "-q", "--load"))
        results["ours cold build --load"] = t
        t, _ = timed(lambda: peer_build("bench/peer-load:latest"))
        results["peer cold docker build"] = t

        def ratio(a: str, b: str) -> float:
            return results[a] / results[b]

        print(
            f"example hello-ml target {target}; base {manifest['base']['reference']} "
            f"({len(manifest['outputs']['layers'])} layers); {os.cpu_count()} CPUs"
        )
        for name, seconds in results.items():
            print(f"  {name:<34} {seconds:7.2f} s")
        cold = (results["ours cold build+push #1"] + results["ours cold build+push #2"]) / (
            results["peer cold build+push #1"] + results["peer cold build+push #2"]
        )
        print(f"  ratio cold build+push ours/peer      {cold:.2f}x (goal <= 0.5x)")
        print(
            f"  ratio app change build+push          {ratio('ours app change build+push', 'peer app change build+push'):.2f}x"
            " (goal <= 1.0x)"
        )
        print(
            f"  ratio cold build to engine           {ratio('ours cold build --load', 'peer cold docker build'):.2f}x"
            " (goal <= 1.0x)"
        )
        for side, values in digests.items():
            print(
                f"  {side}: two cold builds identical: {len(set(values)) == 1}  ({', '.join(v[:19] for v in values)})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
