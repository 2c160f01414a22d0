"""Container start-up with ``bytecode = "none"`` vs ``"unchecked-hash"``, same run, on the bundled example.

The example's ``cpu`` image (numpy, Debian bookworm's Python 3.11) is built twice, differing only in
the target's ``bytecode`` setting, and loaded into the Docker engine. Each image is then started
alternately, ``--runs`` times, with ``docker run --rm --network none``: the time measured is from the
start of ``docker run`` to the first line the service prints (``hello-ml`` imports numpy, computes and
prints one JSON line). Every run is a new container, as in a deployment, so an image without
byte-code compiles every module it imports again at every start. Medians are compared. A second
measure, less sensitive to the engine's own start-up, is the ``import numpy`` time inside the container
(``time.perf_counter`` around the import, same alternation).

    python benchmarks/bench_bytecode.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.foundation.helpers import git_commit  # noqa: E402

EXAMPLE = ROOT / "examples" / "hello-ml"
DOCKER = "docker"
MODES = ("none", "unchecked-hash")


def build(root: Path, mode: str, tag: str) -> tuple[str, int]:
    """Build and load the ``cpu`` image with ``bytecode = mode``; (image reference, app+deps bytes)."""
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    marker = "[tool.repro-build.targets.cpu]\n"
    head, tail = text.split(marker, 1)
    tail = "".join(line for line in tail.splitlines(keepends=True) if not line.startswith("bytecode"))
    pyproject.write_text(f'{head}{marker}bytecode = "{mode}"\n{tail}')
    subprocess.run(["git", "-C", str(root), "commit", "-qam", mode], check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "-m", "reprobuild", "image", "--project", str(root), "--target", "cpu", "-q"],
        check=True,
        capture_output=True,
    )
    archive = root / "build" / "cpu" / "image.tar"
    loaded = subprocess.run([DOCKER, "load", "-q", "-i", str(archive)], check=True, capture_output=True, text=True)
    image_id = loaded.stdout.strip().rsplit(" ", 1)[-1]
    subprocess.run([DOCKER, "tag", image_id, tag], check=True)
    return tag, archive.stat().st_size


def first_output(image: str) -> float:
    """Seconds from ``docker run`` to the first line on the container's stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen([DOCKER, "run", "--rm", "--network", "none", image], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait()
    if proc.returncode != 0 or not line.startswith("{"):
        raise SystemExit(f"{image} did not start: {line!r}")
    return elapsed


IMPORT_TIME = "import time; t = time.perf_counter(); import numpy; print(time.perf_counter() - t)"


def import_time(image: str) -> float:
    """Seconds ``import numpy`` takes in a new container of ``image``."""
    out = subprocess.run(
        [DOCKER, "run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c", IMPORT_TIME],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    suffix = f"{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "hello-ml"
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("build", "dist", "__pycache__"))
        (root / ".gitignore").write_text("build/\ndist/\n")
        git_commit(root)
        images = {mode: build(root, mode, f"bench-bytecode-{mode}:{suffix}") for mode in MODES}
        try:
            for mode in MODES:
                first_output(images[mode][0])  # warm the engine's page cache for both
            times: dict[str, list[float]] = {mode: [] for mode in MODES}
            imports: dict[str, list[float]] = {mode: [] for mode in MODES}
            for _ in range(args.runs):
                for mode in MODES:
                    times[mode].append(first_output(images[mode][0]))
                    imports[mode].append(import_time(images[mode][0]))
        finally:
            subprocess.run([DOCKER, "rmi", *(tag for tag, _ in images.values())], capture_output=True, check=False)
    for mode in MODES:
        t = times[mode]
        print(
            f"bytecode = {mode!r:17} median {statistics.median(t) * 1000:7.0f} ms  "
            f"min {min(t) * 1000:6.0f} ms  max {max(t) * 1000:6.0f} ms  image.tar {images[mode][1] / 1e6:.1f} MB; "
            f"`import numpy` in the container: median {statistics.median(imports[mode]) * 1000:.0f} ms"
        )
    ratio = statistics.median(times["none"]) / statistics.median(times["unchecked-hash"])
    print(f"runs: {args.runs} each, alternating; none / unchecked-hash = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
