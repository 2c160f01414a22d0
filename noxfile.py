"""Sessions for repro-build's own development and for its main job.

`nox -s build` is what CI users copy; `nox -s tests` is what `.ci/run` runs; `nox -l` lists the rest.
Dependencies come from `[dependency-groups]` in pyproject.toml.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["build", "tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml("pyproject.toml")
EXAMPLE = ROOT / "examples" / "hello-ml"


def _install(session: nox.Session, *groups: str) -> None:
    session.install("-e", ".")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


def _summary(session: nox.Session, project: Path, timings: dict[str, float]) -> None:
    """Digests, sizes, layer counts and timings of the targets built under ``project/build``."""
    lines = [f"{project.name}: " + ", ".join(f"{step} {seconds:.1f}s" for step, seconds in timings.items())]
    for manifest in sorted((project / "build").glob("*/manifest.json")):
        data = json.loads(manifest.read_text())
        layers = data["outputs"]["layers"]
        size = sum(layer["size"] for layer in layers)
        lines.append(
            f"  {data['target']:<6} {data['outputs']['manifest_digest']}  {len(layers)} layers, "
            f"{size / 1e6:.1f} MB compressed"
        )
    print("\n".join(lines), flush=True)


def _engine_for_smoke_tests(session: nox.Session) -> bool:
    """Whether a Docker engine answers, for the smoke tests. Building needs none; under `CI` one is required
    (the smoke test then fails naming the engine), elsewhere the job says loudly that it skipped them."""
    if os.environ.get("CI"):
        return True
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0:
        return True
    session.warn("no Docker engine answers `docker info`: images are built and verified, but not smoke-tested")
    return False


@nox.session
def build(session: nox.Session) -> None:
    """The main job: lock --check -> wheel --check -> image (every target, smoke-tested) -> verify, then a summary.

    Runs on the bundled example (`examples/hello-ml`) and on repro-build itself; pass project
    directories to build others: `nox -s build -- path/to/project`.
    """
    _install(session)
    projects = [Path(p).resolve() for p in session.posargs] or [EXAMPLE, ROOT]
    for project in projects:
        timings: dict[str, float] = {}

        def step(name: str, *args: str, project: Path = project, timings: dict[str, float] = timings) -> None:
            start = time.monotonic()
            session.run("repro-build", *args, "--project", str(project))
            timings[name] = timings.get(name, 0.0) + time.monotonic() - start

        step("lock --check", "lock", "--check")
        step("wheel --check", "wheel", "--check")
        config = json.loads(session.run("repro-build", "config", "--project", str(project), silent=True) or "{}")
        smoke = _engine_for_smoke_tests(session)
        for target, settings in sorted(config["targets"].items()):
            # A target with a `smoke` command is loaded into the engine and the command run in it.
            step("image", "image", "--target", target, *(["--smoke"] if smoke and settings.get("smoke") else []))
        start = time.monotonic()
        for manifest in sorted((project / "build").glob("*/manifest.json")):
            session.run("repro-build", "verify", str(manifest))
        timings["verify"] = time.monotonic() - start
        _summary(session, project, timings)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite against the real Docker engine, a loopback registry and uv.

    Under `CI`, tests that need the engine or the registry fail rather than skip when it is missing.
    Extra arguments go to pytest, e.g. `nox -s tests -- -k lock`.
    """
    _install(session, "test")
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    session.run("pytest", *(session.posargs or ["-q"]), env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and check formatting."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", "src", "tests", "noxfile.py", "benchmarks")
    session.run("ruff", "format", "--check", "src", "tests", "noxfile.py", "benchmarks")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package and the tests."""
    _install(session, "typecheck")
    session.run("mypy", "src/reprobuild", "tests", "benchmarks", "noxfile.py")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run every benchmark against its peer and rewrite benchmarks/RESULTS.md (about ten minutes)."""
    _install(session, "test")
    # The compressors libdeflate was chosen against (bench_compress.py compares them; not dependencies).
    session.install("zlib-ng==1.1.0", "isal==1.9.1")
    session.run("python", "benchmarks/run_all.py", *session.posargs)


@nox.session(default=False)
def golden(session: nox.Session) -> None:
    """Refresh every golden value after an intended change of output, then review `git diff`.

    Runs the tests that use the `golden` fixture (marker `golden`; tests/golden.py) with
    `REPRO_BUILD_UPDATE_GOLDEN=1`: the golden image (tests/image/golden.json), the canonical tar, layers
    and image (tests/oci/golden-*.json), the compressed samples and the rendered Dockerfiles. Digests are
    keyed by the compressor versions that produced them, so a new pin adds an entry beside the old ones.
    """
    _install(session, "test")
    session.run("pytest", "-q", "-m", "golden", *session.posargs, env={"REPRO_BUILD_UPDATE_GOLDEN": "1"})


@nox.session(default=False, venv_backend="virtualenv")
def torch(session: nox.Session) -> None:
    """Opt-in: the determinism hook against the real PyTorch CPU build (pip; about 200 MB).

    pip takes torch from the machine's configured indexes and find-links; point `PIP_INDEX_URL`/
    `PIP_EXTRA_INDEX_URL` at a CPU wheel index where PyPI would give the multi-GB CUDA build.
    """
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.install("torch==2.13.0")
    python = str(Path(session.virtualenv.location) / "bin" / "python")
    session.run("pytest", "-q", "-m", "torch", "tests/determinism", env={"REPRO_BUILD_TORCH_PYTHON": python})


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Re-lock repro-build itself and the bundled example (`repro-build lock`)."""
    _install(session)
    session.run("repro-build", "lock")
    session.run("repro-build", "lock", "--project", str(EXAMPLE))


if os.environ.get("CI"):
    # CI machines are fresh: never reuse a virtualenv from an earlier, possibly different, checkout.
    nox.options.reuse_existing_virtualenvs = False
