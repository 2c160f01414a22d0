"""How build time grows with image size: three projects, `repro-build image --push` vs `docker build` + push.

The projects, smallest first: the bundled example (hello-ml: numpy), a small scikit-learn service
(benchmarks/projects/sklearn-service: scikit-learn, scipy, numpy, with its committed locks) and a torch
CPU app (the project of bench_torch_image.py, locked at the start of the run: it needs a torch CPU wheel
in a local find-links directory, ``--find-links``, because the package index offers Linux torch only as
the CUDA build; without one that project is skipped and the output says so).

Each round (a fresh loopback registry per round; who goes first alternates between rounds) measures,
for every project, a cold build + push of both sides, as bench_image.py does: ours is `repro-build image
--push` with no build outputs and no layer cache; the peer is `docker build --network none` (BuildKit,
builder cache pruned) of the Dockerfile `repro-build dockerfile` renders, from the same base (built by
repro-build and loaded into the engine), the same locked wheels and the same project wheel, then
`docker push`. Both sides start with the wheels on disk, so neither downloads.

Reported per project: the image's compressed size (our layers, the base's included) and its unpacked
size (the peer's image in the engine), every round's seconds and ratio, the median ratio with its spread
(min-max) and whether our cold builds gave one digest. Then how both sides grow with size: a least-squares
line through the three (compressed size, median seconds) points per side.

    python benchmarks/bench_scale.py [--rounds 3] [--find-links /opt/wheels] [--torch 2.13.0+cpu]
                                     [--only hello-ml sklearn-service torch-app]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_image import CLI, DOCKER, EXAMPLE, Bench, pair, sh, timed  # noqa: E402
from bench_torch_image import PYPROJECT as TORCH_PYPROJECT  # noqa: E402
from rounds import Paired  # noqa: E402
from tests.testbed import start_registry  # noqa: E402

SKLEARN = HERE / "projects" / "sklearn-service"
TARGET = "cpu"


@dataclass
class Project:
    """One project of the scale and what its rounds measured."""

    name: str
    bench: Bench
    cold_push: Paired
    compressed: int = 0  # bytes: our image's layers, the base's included
    unpacked: int = 0  # bytes: the peer's image as the engine reports it
    layers: int = 0
    digests: list[str] = field(default_factory=list)


def torch_source(work: Path, find_links: str, torch: str) -> tuple[Path, dict[str, str]]:
    """The torch app of bench_torch_image.py, locked with ``find_links`` (the torch CPU wheel's directory)."""
    project = work / "torch-app"
    (project / "src" / "torch_app").mkdir(parents=True)
    (project / "src" / "torch_app" / "__init__.py").write_text('"""A torch app."""\n')
    (project / "pyproject.toml").write_text(TORCH_PYPROJECT.replace("{torch}", torch))
    env = {"UV_FIND_LINKS": find_links}
    sh(*CLI, "lock", "--project", str(project), "-q", env={**os.environ, **env})
    return project, env


def make_projects(work: Path, args: argparse.Namespace) -> tuple[list[Project], list[str]]:
    """The projects to measure, smallest first, and a line for each one skipped."""
    sources: list[tuple[Path, dict[str, str]]] = [(EXAMPLE, {}), (SKLEARN, {})]
    skipped: list[str] = []
    if any(Path(args.find_links).glob(f"torch-{args.torch}-*.whl")):
        (work / "sources").mkdir()
        sources.append(torch_source(work / "sources", args.find_links, args.torch))
    else:
        skipped.append(f"torch-app skipped: no torch-{args.torch} wheel in {args.find_links}")
    projects = []
    for source, env in sources:
        if args.only and source.name not in args.only:
            continue
        (work / source.name).mkdir()
        bench = Bench(work / source.name, TARGET, source=source, env=env)
        # The goals: a torch CPU image at <= 0.7x the peer, any other cold build + push at <= 0.5x.
        goal = 0.7 if source.name == "torch-app" else 0.5
        projects.append(Project(source.name, bench, Paired(f"{source.name}: cold build + push", goal=goal)))
    return projects, skipped


def warm_up(project: Project) -> None:
    """Wheels and .debs into the caches, the base into the engine; the image's sizes."""
    manifest = project.bench.warm_up()
    outputs = manifest["outputs"]
    assert isinstance(outputs, dict)
    project.layers = len(outputs["layers"])
    project.compressed = sum(int(layer["size"]) for layer in outputs["layers"])


def one_round(projects: list[Project], index: int) -> None:
    ours_first = index % 2 == 0
    registry = start_registry()
    try:
        host = registry.registry.host
        for project in projects:
            bench = project.bench
            ref_ours, ref_peer = f"{host}/ours-{project.name}:{TARGET}", f"{host}/peer-{project.name}:{TARGET}"

            def ours(bench: Bench = bench, ref: str = ref_ours, project: Project = project) -> float:
                t, out = timed(functools.partial(bench.ours_cold, "--push", ref))
                project.digests.append(out.rsplit("@", 1)[1])
                return t

            def peer(bench: Bench = bench, ref: str = ref_peer) -> float:
                return timed(functools.partial(bench.peer_cold, ref, push=True))[0]

            project.cold_push.add(*pair(ours, peer, ours_first=ours_first))
            if not project.unpacked:
                project.unpacked = int(sh(DOCKER, "image", "inspect", "--format", "{{.Size}}", ref_peer))
            sh(DOCKER, "rmi", "-f", ref_peer)
    finally:
        registry.stop()


def growth(projects: list[Project]) -> list[str]:
    """How each side's median cold build + push grows with the compressed image size."""
    if len(projects) < 2:
        return []
    mb = [p.compressed / 1e6 for p in projects]
    out = ["growth with the compressed image size (least-squares line through the medians):"]
    for side in ("ours", "peer"):
        seconds = [statistics.median(getattr(p.cold_push, side)) for p in projects]
        fit = statistics.linear_regression(mb, seconds)
        out.append(
            f"  {side}: {fit.intercept:6.1f} s + {fit.slope * 100:5.1f} s per 100 MB "
            f"({', '.join(f'{s:.1f} s at {m:.0f} MB' for s, m in zip(seconds, mb, strict=True))})"
        )
    small, large = projects[0], projects[-1]
    ratio = (
        f"  from {small.name} to {large.name}: image x{large.compressed / small.compressed:.1f}, "
        f"ours x{statistics.median(large.cold_push.ours) / statistics.median(small.cold_push.ours):.1f}, "
        f"peer x{statistics.median(large.cold_push.peer) / statistics.median(small.cold_push.peer):.1f}"
    )
    return [*out, ratio]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--find-links", default="/opt/wheels")
    parser.add_argument("--torch", default="2.13.0+cpu")
    parser.add_argument("--only", nargs="*", default=None, help="project names (default: all three)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    projects: list[Project] = []
    try:
        projects, skipped = make_projects(work, args)
        for project in projects:
            warm_up(project)
        for index in range(args.rounds):
            one_round(projects, index)
            print(f"round {index + 1} of {args.rounds} done", file=sys.stderr, flush=True)
        print(
            f"{len(projects)} projects, target {TARGET} on debian:bookworm; {os.cpu_count()} CPUs; {args.rounds} "
            "interleaved rounds (who goes first alternates); cold build + push, ours vs docker build + push"
        )
        for line in skipped:
            print(line)
        for project in projects:
            same = len(set(project.digests)) == 1
            print(
                f"{project.name}: {project.compressed / 1e6:.0f} MB compressed in {project.layers} layers, "
                f"{project.unpacked / 1e6:.0f} MB unpacked; our {len(project.digests)} cold builds identical: "
                f"{same} ({', '.join(sorted({d[:19] for d in project.digests}))})"
            )
            print("\n".join(project.cold_push.lines()))
        print("\n".join(growth(projects)))
    finally:
        for project in projects:
            subprocess.run([DOCKER, "rmi", "-f", project.bench.base_tag], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
