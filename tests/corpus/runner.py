"""Build each corpus sdist twice with plain ``uv build`` and twice with repro-build, and compare.

Per project (in its own subprocess, so umask and environment changes stay there; projects run side by
side with ``--jobs``):

* **plain** ``uv build`` (sdist, then the wheel from it) of the unpacked sdist, twice: in two directories
  with paths of different lengths, umask 0022 vs 0002, ``TZ`` 26 hours apart, ``C.UTF-8`` vs another
  locale; no ``SOURCE_DATE_EPOCH``, no compiler flags from the caller;
* **repro-build**: the unpacked sdist, less its generated ``PKG-INFO``, as a git checkout (one commit at
  a fixed date, tagged ``v<version>`` as a release checkout is), ``repro-build lock --build-only``, then
  ``repro-build wheel``, twice: two checkouts at paths of different lengths, with the same
  umask/``TZ``/locale variation.

"identical" means both the sdist and the wheel have the same sha256. Where they differ, the members
that differ (``reprobuild.wheel.diffreport``, what ``wheel --check`` reports) are the cause.

    python -m tests.corpus.runner [--jobs 2] [NAME ...]     # prints a Markdown table
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reprobuild.uvbin import find_uv
from tests.corpus.projects import CORPUS, Project
from tests.sdists import fetch, unpack

ROOT = Path(__file__).resolve().parents[2]
#: Fixed commit date of the corpus checkouts (2024-01-02T03:04:05Z).
COMMIT_EPOCH = 1704164645
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "corpus",
    "GIT_AUTHOR_EMAIL": "corpus@example.invalid",
    "GIT_COMMITTER_NAME": "corpus",
    "GIT_COMMITTER_EMAIL": "corpus@example.invalid",
    "GIT_AUTHOR_DATE": f"@{COMMIT_EPOCH} +0000",
    "GIT_COMMITTER_DATE": f"@{COMMIT_EPOCH} +0000",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
_FLAGS = ("CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "RUSTFLAGS", "SOURCE_DATE_EPOCH")


@dataclass
class Side:
    """One tool's two builds of one project."""

    built: bool = False
    identical: bool = False
    seconds: float = 0.0
    error: str = ""
    differences: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    name: str
    version: str
    backend: str
    kind: str
    plain: Side
    repro: Side


def _variants(work: Path) -> list[tuple[Path, int, dict[str, str]]]:
    from reprobuild.wheel.check import other_locale

    return [
        (work / "a", 0o022, {"TZ": "Etc/GMT+12", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}),
        (work / "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" / "deeper", 0o002, {"TZ": "Etc/GMT-14", "LC_ALL": other_locale()}),
    ]


@contextlib.contextmanager
def _conditions(umask: int, env: dict[str, str]) -> Iterator[None]:
    old_mask = os.umask(umask)
    old_env = dict(os.environ)
    for key in _FLAGS:
        os.environ.pop(key, None)
    os.environ.update(env)
    try:
        yield
    finally:
        os.umask(old_mask)
        os.environ.clear()
        os.environ.update(old_env)


def _tail(text: str, lines: int = 6) -> str:
    """The last lines of a tool's output, on one line, without the random temporary paths."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return re.sub(r"/tmp/corpus-[^/\s]+/", "…/", " | ".join(kept))


def _compare(side: Side, pairs: list[tuple[Path, Path]]) -> None:
    from reprobuild.wheel.diffreport import diff_artifacts

    side.identical = True
    for a, b in pairs:
        side.artifacts.append(a.name)
        if a.name != b.name or hashlib.sha256(a.read_bytes()).digest() != hashlib.sha256(b.read_bytes()).digest():
            side.identical = False
            if a.name != b.name:
                side.differences.append(f"{a.name} vs {b.name}")
                continue
            for d in diff_artifacts(a, b):
                side.differences.append(str(d))


def _artifacts(out: Path) -> list[Path]:
    return sorted(out.glob("*.tar.gz")) + sorted(out.glob("*.whl"))


def plain_builds(archive: Path, work: Path) -> Side:
    side = Side()
    outs: list[list[Path]] = []
    start = time.monotonic()
    for base, umask, env in _variants(work / "plain"):
        src = unpack(archive, base / "src")
        out = base / "dist"
        with _conditions(umask, env):
            proc = subprocess.run(
                [find_uv(), "build", str(src), "--out-dir", str(out), "--no-create-gitignore", "--no-progress"],
                capture_output=True,
                text=True,
                check=False,
            )
        if proc.returncode != 0:
            side.error = _tail(proc.stderr or proc.stdout)
            side.seconds = time.monotonic() - start
            return side
        outs.append(_artifacts(out))
    side.seconds = time.monotonic() - start
    side.built = True
    _compare(side, list(zip(outs[0], outs[1], strict=False)))
    return side


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], env={**os.environ, **_GIT_ENV}, capture_output=True, check=True)


def _checkout(archive: Path, dest: Path, version: str) -> Path:
    """The sdist's files as a release checkout: one commit, tagged ``v<version>``.

    The sdist's top-level ``PKG-INFO`` is left out: the sdist step generated it, a checkout does not
    have it, and a backend that packs the tree (hatchling) would write a second, different ``PKG-INFO``
    into the new sdist, which repro-build refuses as ambiguous (uv keeps whichever comes last).
    """
    src = unpack(archive, dest)
    (src / "PKG-INFO").unlink(missing_ok=True)
    _git(src, "init", "-q", "-b", "main")
    _git(src, "add", "-A", "-f")
    _git(src, "commit", "-q", "--no-gpg-sign", "-m", "release")
    _git(src, "tag", f"v{version}")
    return src


def repro_builds(archive: Path, work: Path, version: str) -> Side:
    """Lock once (``lock --build-only`` in the first checkout, the locks committed to both), then build
    in each checkout; ``seconds`` counts the two ``wheel`` steps, as the plain side counts its builds."""
    side = Side()
    outs: list[list[Path]] = []
    cli = [sys.executable, "-m", "reprobuild"]
    variants = _variants(work / "repro")
    checkouts = [_checkout(archive, base / "checkout", version) for base, _umask, _env in variants]
    lock = subprocess.run(
        [*cli, "lock", "--build-only", "--project", str(checkouts[0])], capture_output=True, text=True, check=False
    )
    if lock.returncode != 0:
        side.error = "lock: " + _tail(lock.stderr or lock.stdout)
        return side
    for src in checkouts:
        if src != checkouts[0]:
            shutil.copytree(checkouts[0] / "repro-locks", src / "repro-locks")
        _git(src, "add", "-A", "-f")
        _git(src, "commit", "-q", "--no-gpg-sign", "-m", "lock")
        _git(src, "tag", "-f", f"v{version}")
    for src, (base, umask, env) in zip(checkouts, variants, strict=True):
        out = base / "dist"
        start = time.monotonic()
        with _conditions(umask, env):
            proc = subprocess.run(
                [*cli, "wheel", "--project", str(src), "--out-dir", str(out)],
                capture_output=True,
                text=True,
                check=False,
            )
        side.seconds += time.monotonic() - start
        if proc.returncode != 0:
            side.error = _tail(proc.stderr or proc.stdout)
            return side
        outs.append(_artifacts(out))
    side.built = True
    _compare(side, list(zip(outs[0], outs[1], strict=False)))
    return side


def run_one(project: Project) -> Outcome:
    """Fetch, then build one project four times (in this process)."""
    archive = fetch(project.sdist)
    with tempfile.TemporaryDirectory(prefix=f"corpus-{project.sdist.name}-") as tmp:
        work = Path(tmp)
        plain = plain_builds(archive, work)
        repro = repro_builds(archive, work, project.sdist.version)
    s = project.sdist
    return Outcome(s.name, s.version, project.backend, project.kind, plain, repro)


def _side(data: dict[str, object]) -> Side:
    return Side(**data)  # type: ignore[arg-type]


def run_isolated(project: Project, timeout: float = 900) -> Outcome:
    """:func:`run_one` in a subprocess (umask and environment changes stay there)."""
    s = project.sdist
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.corpus.runner", "--one", project.sdist.name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        # One slow project (a loaded machine) is an outcome of its own, not the end of the run.
        late = Side(error=f"timed out after {timeout:.0f} s (four builds)")
        return Outcome(s.name, s.version, project.backend, project.kind, late, late)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        failed = Side(error=_tail(proc.stderr or proc.stdout))
        return Outcome(s.name, s.version, project.backend, project.kind, failed, failed)
    data = json.loads(lines[-1])
    return Outcome(**{**data, "plain": _side(data["plain"]), "repro": _side(data["repro"])})


def run_corpus(projects: tuple[Project, ...] = CORPUS, jobs: int = 2, log: Path | None = None) -> list[Outcome]:
    """Every project of ``projects`` through :func:`run_isolated`, ``jobs`` at a time, in corpus order;
    each outcome is appended to ``log`` (JSON lines) as soon as it is known."""

    def one(project: Project) -> Outcome:
        outcome = run_isolated(project)
        if log is not None:
            with log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(asdict(outcome)) + "\n")
        return outcome

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, projects))


def _mark(side: Side) -> str:
    if not side.built:
        return "not built"
    return "identical" if side.identical else "**differs**"


def table(outcomes: list[Outcome]) -> str:
    """The Markdown table for RESULTS.md, with a summary line."""
    lines = [
        "| project | backend | kind | plain `uv build` | repro-build | time ratio (wheel step) "
        "| cause of differences |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        timed = o.plain.built and o.repro.built and o.plain.seconds > 0
        ratio = f"{o.repro.seconds / o.plain.seconds:.2f}x" if timed else "-"
        causes: list[str] = []
        if o.plain.built and not o.plain.identical:
            causes.append("plain: " + "; ".join(o.plain.differences[:3]))
        if o.repro.built and not o.repro.identical:
            causes.append("repro-build: " + "; ".join(o.repro.differences[:3]))
        if not o.plain.built:
            causes.append(f"plain failed: {o.plain.error[:200]}")
        if not o.repro.built:
            causes.append(f"repro-build failed: {o.repro.error[:200]}")
        cause = "<br>".join(c.replace("|", "\\|") for c in causes) or "-"
        row = f"| {o.name} {o.version} | {o.backend} | {o.kind} | {_mark(o.plain)} | {_mark(o.repro)} | {ratio} |"
        lines.append(f"{row} {cause} |")
    plain_built = [o for o in outcomes if o.plain.built]
    both = [o for o in plain_built if o.repro.built]
    lines += [
        "",
        f"{len(outcomes)} projects. plain `uv build`: {len(plain_built)} built, "
        f"{sum(o.plain.identical for o in plain_built)} identical. repro-build: {len(both)} of those "
        f"{len(plain_built)} built, {sum(o.repro.identical for o in both)} identical "
        f"({sum(o.repro.built for o in outcomes)} built in all). Total time plain "
        f"{sum(o.plain.seconds for o in outcomes):.0f} s, repro-build {sum(o.repro.seconds for o in outcomes):.0f} s.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="corpus projects to run (default: all)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help="append each outcome here as a JSON line when it is known")
    args = parser.parse_args()
    by_name = {p.sdist.name: p for p in CORPUS}
    if args.one:
        print(json.dumps(asdict(run_one(by_name[args.one]))))
        return 0
    selected = tuple(by_name[n] for n in args.names) if args.names else CORPUS
    start = time.monotonic()
    outcomes = run_corpus(selected, args.jobs, args.log)
    print(table(outcomes))
    print(f"\nwall time {time.monotonic() - start:.0f} s with {args.jobs} jobs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
