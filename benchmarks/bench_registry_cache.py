"""A second machine state building from a warm registry cache vs a truly cold build (issue: speed).

On the bundled example. Every measured build starts as a fresh CI machine would: an empty repro-build
cache (no .debs, wheels, built base, base facts or layers), a new machine cache key, an empty uv
cache, and no build outputs. One build first fills a loopback registry's cache repository. Then, in
interleaved rounds (the order rotates each round):
  - "cold": no registry cache: the .debs and wheels are downloaded, the base assembled and inspected,
    the wheels installed and every layer written;
  - "registry": `--cache REF` with the fleet secret (sealed mode): the base, its facts and the
    third-party layers are taken from the registry; the project wheel and app layer are built;
  - "trust-free": `--cache REF` without the secret: only layers are shared, each re-derived from its
    inputs before use (so the .debs and wheels are still downloaded and installed).
Ratios registry/cold and trust-free/cold are reported per round, then their median and spread, with
whether every build gave one digest (the run fails if not).

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

from bench_image import CLI, sh, timed  # noqa: E402
from rounds import Paired  # noqa: E402
from tests.foundation.helpers import git_commit  # noqa: E402
from tests.testbed import start_registry  # noqa: E402

#: The fleet secret of this run (the bench's own; any 16+ bytes do).
SECRET = "bench-registry-cache-fleet-secret-0123456789"


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
        ref = f"{registry.registry.host}/bench/build-cache"
        counter = iter(range(1_000_000))

        def build(*extra: str, secret: bool = False) -> str:
            """One build on a fresh machine state (module docstring); its image digest."""
            state = work / f"machine-{next(counter)}"
            env = {
                **os.environ,
                "REPRO_BUILD_CACHE": str(state / "cache"),
                "UV_CACHE_DIR": str(state / "uv-cache"),
                "XDG_CONFIG_HOME": str(state / "config"),
            }
            for name in ("PYTHONDONTWRITEBYTECODE", "REPRO_BUILD_CACHE_KEY", "REPRO_BUILD_CACHE_SECRET"):
                env.pop(name, None)
            if secret:
                env["REPRO_BUILD_CACHE_SECRET"] = SECRET
            shutil.rmtree(project / "build", ignore_errors=True)
            try:
                return sh(*CLI, "image", "--project", str(project), "--target", args.target, "-q", *extra, env=env)
            finally:
                shutil.rmtree(state, ignore_errors=True)

        filled = build("--cache", ref, secret=True)  # fills the registry cache (sealed entries)
        sealed = Paired("warm registry cache, sealed mode vs truly cold", goal=0.3, labels=("registry", "cold"))
        free = Paired("warm registry cache, trust-free mode vs truly cold", labels=("trust-free", "cold"))
        runs = {
            "registry": lambda: build("--cache", ref, secret=True),
            "trust-free": lambda: build("--cache", ref),
            "cold": build,
        }
        order = list(runs)
        digests = {filled}
        for index in range(args.rounds):
            times: dict[str, float] = {}
            for name in order[index % 3 :] + order[: index % 3]:
                times[name], digest = timed(runs[name])
                digests.add(digest)
            sealed.add(times["registry"], times["cold"])
            free.add(times["trust-free"], times["cold"])
        print(f"example hello-ml target {args.target}; {os.cpu_count()} CPUs; {args.rounds} interleaved rounds")
        print("every build: empty repro-build cache, new cache key, empty uv cache")
        print("\n".join(sealed.lines()))
        print("\n".join(free.lines()))
        same = len(digests) == 1
        print(f"all {3 * args.rounds + 1} builds gave one digest: {same} ({', '.join(sorted(digests))})")
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
