"""Interpreter start-up with and without the determinism hook's .pth (issue: "costs nothing otherwise").

Two fresh venvs, identical but for the hook layer's files (policy `python,torch`, so the .pth is
installed; the hook module ships compiled, as in an image);
`python -c pass` is run alternately in each, many times, and the medians compared. Same run, ratio.

    python benchmarks/bench_hook.py [--runs 200]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from reprobuild.determinism.policy import Policy
from reprobuild.image.build import app_files
from reprobuild.image.interpreter import find_interpreter
from reprobuild.uvbin import find_uv


def make_venv(root: Path, with_hook: bool) -> Path:
    """A venv; with the hook, its site-packages gets exactly the hook layer of an image (pyc included)."""
    subprocess.run([find_uv(), "venv", "-q", "--python", "3.11", str(root)], check=True)
    if with_hook:
        site = next(root.glob("lib/python3.*/site-packages"))
        compiler = find_interpreter("3.11")
        for path, data in app_files(Policy(("python", "torch")), str(site), compiler, root / "scratch"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(data)
    return root / "bin" / "python"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain = make_venv(Path(tmp) / "plain", with_hook=False)
        hooked = make_venv(Path(tmp) / "hooked", with_hook=True)
        times: dict[str, list[float]] = {"plain": [], "hooked": []}
        for _ in range(args.runs):
            for name, python in (("plain", plain), ("hooked", hooked)):
                start = time.perf_counter()
                subprocess.run([str(python), "-c", "pass"], check=True)
                times[name].append(time.perf_counter() - start)
    p, h = statistics.median(times["plain"]), statistics.median(times["hooked"])
    print(f"python -c pass, median of {args.runs}: without hook {p * 1000:.2f} ms, with hook {h * 1000:.2f} ms")
    print(f"ratio hooked/plain: {h / p:.3f}  (delta {(h - p) * 1000:+.2f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
