"""`repro-build image` vs `docker build` of the equivalent Dockerfile, interleaved rounds, on the bundled example.

The peer is the Dockerfile `repro-build dockerfile` renders (same base, loaded in the engine; the same
locked wheels and the same project wheel in its build context; `docker build --network none` with
BuildKit from Debian's /usr/bin/docker) followed by `docker push` to a loopback registry. Both sides
start with the wheels on disk (our verified cache; the peer's build context), so neither downloads.

Each round (a fresh loopback registry per round; who goes first alternates between rounds) measures:
  1. cold build + push (no previous layers: build dir and layer cache removed, builder cache pruned);
  2. after a one-line app change, build + push (both keep what the cold build left);
  3. cold build to a runnable image in the engine (`image --load` vs `docker build`);
  4. start-up: time from `docker run` to the first line the service prints, for the two images of 3,
     alternating, `--startup-runs` containers each (the round's median per side).
Every measure is reported per round as ours/peer, then as the median ratio over the rounds with its
spread (min-max). Also: whether the cold builds of all rounds gave identical digests. ``--only startup``
builds each image once (ours with ``--load``, the peer with ``docker build``) and measures only 4, the rounds
still interleaved and alternating.

The peer's ``FROM`` is the Debian base of the ``.deb`` files alone (the layer our image starts with, loaded in
the engine); what its ``RUN`` steps compile at build time stays in its image, as in any ``docker build``.

repro-build runs with a cache of its own (the machine's blob store, with its wheels and .debs, and built
bases linked in; not the layer cache's entries, so no layer is reused), so "cold" never touches the user's
cache. `PYTHONDONTWRITEBYTECODE` is removed from its environment: an
installed repro-build imports from byte-code, and a source checkout with that variable set would
compile every module at every start.

    python benchmarks/bench_image.py [--target cpu] [--rounds 3] [--startup-runs 5] [--only startup]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rounds import Paired  # noqa: E402
from tests.foundation.helpers import git_commit  # noqa: E402
from tests.testbed import start_registry  # noqa: E402

from reprobuild.oci.image import Image  # noqa: E402
from reprobuild.oci.layout import read_layout  # noqa: E402

DOCKER = "/usr/bin/docker"
EXAMPLE = ROOT / "examples" / "hello-ml"
CLI = [sys.executable, "-m", "reprobuild"]
#: What repro-build's cache shares with the machine's: content-addressed and re-verified on every read.
SHARED_CACHE = ("blobs", "bases", "baseinfo")


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env or dict(os.environ), check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout.strip()


def timed(fn: Callable[[], str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def link_tree(src: Path, dest: Path) -> None:
    """``src`` copied to ``dest`` as hard links (copies across file systems)."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dest, copy_function=link, symlinks=True)


class Bench:
    """The example project, the engine-side base, and the two build paths."""

    def __init__(self, work: Path, target: str, source: Path = EXAMPLE, env: dict[str, str] | None = None) -> None:
        """``source`` (a project with its locks) is copied into ``work`` and committed there; ``env`` is
        added to repro-build's environment."""
        self.work = work
        self.target = target
        self.project = work / source.name
        self.base_tag = f"bench/base-{source.name}-{os.getpid()}:latest"
        self.cache = work / "cache"
        machine = Path(os.environ.get("REPRO_BUILD_CACHE") or Path.home() / ".cache" / "repro-build")
        self.cache.mkdir()
        for name in SHARED_CACHE:
            if (machine / name).is_dir():
                link_tree(machine / name, self.cache / name)
        self.env = {**os.environ, **(env or {}), "REPRO_BUILD_CACHE": str(self.cache)}
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        shutil.copytree(source, self.project, ignore=shutil.ignore_patterns("build", "dist", ".git"))
        (self.project / ".gitignore").write_text("build/\ndist/\n")
        git_commit(self.project)

    def warm_up(self) -> dict[str, object]:
        """Fill the wheel and .deb caches, then load the base into the engine for the peer's FROM."""
        self.ours()
        manifest: dict[str, object] = json.loads((self.project / "build" / self.target / "manifest.json").read_text())
        base = manifest["base"]
        assert isinstance(base, dict)
        # The cache may hold bases of other locks: take the one our image starts with.
        ours = read_layout(self.project / "build" / self.target / "oci", tag=self.target)
        assert isinstance(ours, Image)
        base_layout = next(
            p
            for p in sorted((self.cache / "bases").glob("*/oci"))
            if isinstance(base := read_layout(p), Image) and base.layers[0].digest == ours.layers[0].digest
        )
        sh(*CLI, "copy", f"oci-layout:{base_layout}", f"docker-daemon:{self.base_tag}", "-q", env=self.env)
        return manifest

    def ours(self, *extra: str) -> str:
        return sh(*CLI, "image", "--project", str(self.project), "--target", self.target, "-q", *extra, env=self.env)

    def ours_cold(self, *extra: str) -> str:
        shutil.rmtree(self.project / "build", ignore_errors=True)
        shutil.rmtree(self.cache / "layers", ignore_errors=True)
        return self.ours(*extra)

    def peer_context(self) -> Path:
        ctx, dist = self.work / "ctx", self.work / "dist"
        shutil.rmtree(ctx, ignore_errors=True)
        shutil.rmtree(dist, ignore_errors=True)
        sh(*CLI, "wheel", "--project", str(self.project), "--out-dir", str(dist), "-q", env=self.env)
        wheel = next(dist.glob("*.whl"))
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
            str(self.cache),  # the cache's store: names from the lock's recorded wheel list
            "--project-wheel",
            str(wheel),
            env=self.env,
        )
        return ctx

    def peer(self, tag: str, *, push: bool) -> str:
        ctx = self.peer_context()
        sh(DOCKER, "build", "-q", "--network", "none", "-t", tag, str(ctx), env={**os.environ, "DOCKER_BUILDKIT": "1"})
        image_id = sh(DOCKER, "image", "inspect", "--format", "{{.Id}}", tag)
        if push:
            sh(DOCKER, "push", "-q", tag)
        return image_id

    def peer_cold(self, tag: str, *, push: bool) -> str:
        sh(DOCKER, "builder", "prune", "-af")
        return self.peer(tag, push=push)

    def app_change(self) -> None:
        module = self.project / "src" / "hello_ml" / "__init__.py"
        module.write_text(module.read_text() + "\n# a one-line app change\n")
        git_commit(self.project)

    def app_revert(self) -> None:
        subprocess.run(["git", "-C", str(self.project), "reset", "-q", "--hard", "HEAD~1"], check=True)


def first_output(image: str) -> float:
    """Seconds from ``docker run`` to the first line on the container's stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen([DOCKER, "run", "--rm", "--network", "none", image], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.stdout.read()
    proc.wait()
    if proc.returncode != 0 or not line.strip():
        raise SystemExit(f"{image} did not start: {line!r}")
    return elapsed


def pair(first: Callable[[], float], second: Callable[[], float], *, ours_first: bool) -> tuple[float, float]:
    """(ours, peer) seconds, run in the round's order (``first`` is ours)."""
    if ours_first:
        o = first()
        return o, second()
    p = second()
    return first(), p


class Results:
    def __init__(self) -> None:
        self.cold_push = Paired("cold build + push", goal=0.5)
        self.app_push = Paired("one-line app change, build + push", goal=0.3)
        self.cold_engine = Paired("cold build to the engine (image --load vs docker build)", goal=0.8)
        self.startup = Paired("start-up: docker run to first output (median of the round's runs)")
        self.digests: dict[str, list[str]] = {"ours": [], "peer": []}

    def lines(self) -> list[str]:
        out: list[str] = []
        for measure in (self.cold_push, self.app_push, self.cold_engine, self.startup):
            out += measure.lines()
        for side, values in self.digests.items():
            same = len(set(values)) == 1
            out.append(
                f"{side}: {len(values)} cold builds identical: {same} ({', '.join(sorted({v[:19] for v in values}))})"
            )
        return out


def one_round(bench: Bench, results: Results, index: int, startup_runs: int) -> None:
    ours_first = index % 2 == 0
    registry = start_registry()
    try:
        host = registry.registry.host
        ref_ours, ref_peer = f"{host}/ours:{bench.target}", f"{host}/peer:{bench.target}"
        digest: list[str] = []
        image_id: list[str] = []

        def ours_cold_push() -> float:
            t, out = timed(functools.partial(bench.ours_cold, "--push", ref_ours))
            digest.append(out.rsplit("@", 1)[1])
            return t

        def peer_cold_push() -> float:
            t, out = timed(functools.partial(bench.peer_cold, ref_peer, push=True))
            image_id.append(out)
            return t

        results.cold_push.add(*pair(ours_cold_push, peer_cold_push, ours_first=ours_first))
        results.digests["ours"] += digest
        results.digests["peer"] += image_id
        bench.app_change()
        try:
            results.app_push.add(
                *pair(
                    lambda: timed(functools.partial(bench.ours, "--push", ref_ours))[0],
                    lambda: timed(functools.partial(bench.peer, ref_peer, push=True))[0],
                    ours_first=ours_first,
                )
            )
        finally:
            bench.app_revert()
    finally:
        registry.stop()
    results.cold_engine.add(
        *pair(
            lambda: timed(lambda: bench.ours_cold("--load"))[0],
            lambda: timed(lambda: bench.peer_cold(PEER_TAG, push=False))[0],
            ours_first=ours_first,
        )
    )
    startup_round(bench, results, ours_first, startup_runs)


#: The peer's image in the engine, by a name no other job uses.
PEER_TAG = f"bench/peer-{os.getpid()}:latest"


def startup_round(bench: Bench, results: Results, ours_first: bool, startup_runs: int) -> None:
    """Measure 4 on the images the last ``--load`` and ``docker build`` left in the engine."""
    # By image ID: another job on the engine may load its own `hello-ml:cpu` meanwhile.
    manifest = json.loads((bench.project / "build" / bench.target / "manifest.json").read_text())
    tag_ours, tag_peer = str(manifest["outputs"]["image_id"]), PEER_TAG
    first_output(tag_ours)  # the engine's page cache warm for both
    first_output(tag_peer)
    runs: dict[str, list[float]] = {"ours": [], "peer": []}
    for _ in range(startup_runs):
        o, p = pair(lambda: first_output(tag_ours), lambda: first_output(tag_peer), ours_first=ours_first)
        runs["ours"].append(o)
        runs["peer"].append(p)
    results.startup.add(statistics.median(runs["ours"]), statistics.median(runs["peer"]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument("--only", choices=("startup",), help="measure only the containers' start-up")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-image-"))
    bench = Bench(work, args.target)
    try:
        manifest = bench.warm_up()
        results = Results()
        if args.only == "startup":
            bench.ours("--load")
            bench.peer(PEER_TAG, push=False)
        for index in range(args.rounds):
            if args.only == "startup":
                startup_round(bench, results, index % 2 == 0, args.startup_runs)
            else:
                one_round(bench, results, index, args.startup_runs)
            print(f"round {index + 1} of {args.rounds} done", file=sys.stderr, flush=True)
        outputs = manifest["outputs"]
        base = manifest["base"]
        assert isinstance(outputs, dict) and isinstance(base, dict)
        print(
            f"example hello-ml target {args.target}; base {base['reference']} ({len(outputs['layers'])} layers); "
            f"{os.cpu_count()} CPUs; {args.rounds} interleaved rounds (who goes first alternates); "
            f"start-up: {args.startup_runs} containers per side per round"
        )
        print("\n".join(results.startup.lines() if args.only == "startup" else results.lines()))
    finally:
        for tag in (bench.base_tag, PEER_TAG):
            subprocess.run([DOCKER, "rmi", "-f", tag], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
