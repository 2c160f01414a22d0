"""`image --cache REF` on a machine state with no layer cache vs the same build without the registry cache.

On the bundled example: one build fills a loopback registry's cache repository. Then, in interleaved
rounds (who goes first alternates), two builds each start with no build outputs and an empty layer cache
(the wheels, .debs and built base stay, as a CI machine that restores only those would have them):
  - "cold": no registry cache, so every layer is written and compressed;
  - "registry": `--cache REF`, so each layer is taken from the registry after its inputs are checked.
The ratio registry/cold is reported per round, then its median and spread, with whether all digests agree.

    python benchmarks/bench_registry_cache.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_image import CLI, SHARED_CACHE, link_tree, sh, timed  # noqa: E402
from rounds import Paired  # noqa: E402
from tests.foundation.helpers import git_commit  # noqa: E402
from tests.testbed import start_registry  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-regcache-"))
    registry = start_registry()
    try:
        project = work / "hello-ml"
        shutil.copytree(ROOT / "examples" / "hello-ml", project, ignore=shutil.ignore_patterns("build", "dist"))
        (project / ".gitignore").write_text("build/\ndist/\n")
        git_commit(project)
        cache = work / "cache"
        cache.mkdir()
        machine = Path(os.environ.get("REPRO_BUILD_CACHE") or Path.home() / ".cache" / "repro-build")
        for name in SHARED_CACHE:
            if (machine / name).is_dir():
                link_tree(machine / name, cache / name)
        env = {**os.environ, "REPRO_BUILD_CACHE": str(cache)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        ref = f"{registry.registry.host}/bench/build-cache"

        def build(*extra: str) -> str:
            shutil.rmtree(project / "build", ignore_errors=True)
            shutil.rmtree(cache / "layers", ignore_errors=True)
            return sh(*CLI, "image", "--project", str(project), "--target", args.target, "-q", *extra, env=env)

        filled = build("--cache", ref)  # fills the registry (and the base, wheels) once
        measure = Paired(
            "empty layer cache: with the registry cache vs without (ratio registry/cold)",
            goal=0.3,
            labels=("registry", "cold"),
        )
        digests = {filled}
        for index in range(args.rounds):
            if index % 2 == 0:
                t_reg, d_reg = timed(lambda: build("--cache", ref))
                t_cold, d_cold = timed(build)
            else:
                t_cold, d_cold = timed(build)
                t_reg, d_reg = timed(lambda: build("--cache", ref))
            measure.add(t_reg, t_cold)
            digests |= {d_reg, d_cold}
        print(f"example hello-ml target {args.target}; {os.cpu_count()} CPUs; {args.rounds} interleaved rounds")
        print("\n".join(measure.lines()))
        print(f"all {2 * args.rounds + 1} builds gave one digest: {len(digests) == 1} ({', '.join(sorted(digests))})")
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
