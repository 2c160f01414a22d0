"""`repro-build wheel` vs plain `uv build` on the C-extension fixture, in the same run.

Both build the sdist and then the wheel from it, with the same hashed build constraints and Python,
so the ratio is repro-build's overhead: the git export, the two `uv build` calls, canonicalising
both archives and writing the build record. Goal: at most 10 % over plain `uv build`.

Run from the repository root:

    .venv/bin/python benchmarks/bench_wheel.py --rounds 5
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.wheel.fixtures import make_repo

from reprobuild.uvbin import find_uv, uv_version
from reprobuild.wheel.build import build_wheel


def _cpu() -> float:
    """CPU seconds used so far by this process and its finished children: steadier than wall time on a
    shared machine, and what an overhead costs."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fixture", default="setuptools_cext")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-wheel-") as tmp:
        work = Path(tmp)
        config = make_repo(args.fixture, work / "project")
        lock = config.locks_dir / "build.txt"

        def plain() -> None:
            out = work / "plain-out"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [find_uv(), "build", str(config.root), "--out-dir", str(out), "--build-constraints", str(lock)]
            cmd += ["--require-hashes", "--python", config.python, "--no-progress"]
            subprocess.run(cmd, check=True, capture_output=True)
            # uv builds in place for the sdist step's egg-info; clean it so each round starts equal.
            for p in config.root.glob("src/*.egg-info"):
                shutil.rmtree(p)
            shutil.rmtree(config.root / "build", ignore_errors=True)

        def ours() -> None:
            build_wheel(config, out_dir=work / "ours-out")

        plain()
        ours()  # warm uv's cache for both
        times: dict[str, list[float]] = {"uv build": [], "repro-build wheel": []}
        cpu: dict[str, list[float]] = {"uv build": [], "repro-build wheel": []}
        for i in range(args.rounds):
            order = [("uv build", plain), ("repro-build wheel", ours)]
            for label, fn in order if i % 2 == 0 else reversed(order):
                c0 = _cpu()
                t0 = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t0)
                cpu[label].append(_cpu() - c0)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    print(f"fixture: {args.fixture}, rounds: {args.rounds} (alternating order), uv {uv_version()}")
    for label, value in med.items():
        spread = ", ".join(f"{t:.2f}" for t in times[label])
        print(f"  {label:<20} median {value:5.2f} s  min {best[label]:5.2f} s  (runs: {spread})")
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    for label, value in cpu_med.items():
        print(f"  {label:<20} CPU time (self + children, user + sys) median {value:5.2f} s")
    for what, values in (("median", med), ("min", best), ("CPU median", cpu_med)):
        ratio = values["repro-build wheel"] / values["uv build"]
        print(f"  ratio repro-build/uv ({what}) {ratio:.3f}x  ({(ratio - 1) * 100:+.1f} % overhead; goal <= +10 %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
