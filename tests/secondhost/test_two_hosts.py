"""The same commit gives the same image digests on two hosts, and each host verifies the other's manifests.

Host A is this machine (Debian 12 and its Python in CI). Host B is a Debian 13 chroot running repro-build
on Debian 13's own Python 3.13 (:mod:`tests.secondhost.chroot`), with another zlib, another git, other
paths. Each host clones the commit itself, by a different URL form and into a different directory, and
builds with its own empty repro-build cache (seeded only with downloaded wheels and .debs, which are
verified by sha256 on every read), so every layer is compressed and every base assembled on each host.

When digests differ, the failure message carries ``repro-build diff`` of the two images and the fields in
which the two build manifests differ: the cause is named, not just the symptom.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.foundation.helpers import git_commit
from tests.secondhost.chroot import REPO_ROOT, SecondHost, SecondHostUnavailable, install_repro_build, second_host
from tests.secondhost.conftest import SUMMARY
from tests.testbed import unavailable

pytestmark = [pytest.mark.secondhost, pytest.mark.network, pytest.mark.slow]

EXAMPLE = "examples/hello-ml"
EXAMPLE_TARGETS = ("cpu", "cuda")
#: A project with no `[tool.repro-build]`: python, platform and base come from defaults at first lock.
ZERO_CONFIG_PYPROJECT = """\
[project]
name = "zero-config"
version = "1.0.0"
requires-python = ">=3.11"
dependencies = ["six==1.17.0"]

[project.scripts]
zero-config = "zero_config:main"

[build-system]
requires = ["hatchling==1.33.0"]
build-backend = "hatchling.build"
"""
ZERO_CONFIG_MODULE = 'def main() -> None:\n    print("zero config")\n'
#: Two spellings of one public repository, as two people would have cloned it.
ZERO_CONFIG_REMOTES = ("git@git.example.org:acme/zero-config.git", "https://git.example.org/acme/zero-config")


@dataclass
class Step:
    """One repro-build command on one host: what ran, how it ended, how long it took."""

    host: str
    args: tuple[str, ...]
    returncode: int
    output: str
    seconds: float

    def __str__(self) -> str:
        return f"[{self.host}] repro-build {' '.join(self.args)} -> exit {self.returncode} ({self.seconds:.0f}s)"


@dataclass
class Hosts:
    """Both hosts, their clones and caches, and a log of every step."""

    second: SecondHost
    work_a: Path
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def cache_a(self) -> Path:
        return self.work_a / "cache"

    @property
    def cache_b(self) -> Path:
        return self.second.exchange / "cache-b"

    def on_a(self, *args: str, cwd: Path) -> Step:
        """``repro-build ARGS`` on this machine with its own cache."""
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "reprobuild", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "REPRO_BUILD_CACHE": str(self.cache_a)},
        )
        return self._record("A: debian-12", args, proc, start)

    def on_b(self, *args: str, cwd: str, cache: Path | None = None) -> Step:
        """``repro-build ARGS`` in the Debian 13 chroot with its own cache (or ``cache``, under the exchange dir)."""
        start = time.monotonic()
        cache_dir = self.second.inside(cache or self.cache_b)
        proc = self.second.run(["repro-build", *args], cwd=cwd, env={"REPRO_BUILD_CACHE": cache_dir})
        return self._record("B: debian-13 chroot", args, proc, start)

    def _record(self, host: str, args: tuple[str, ...], proc: subprocess.CompletedProcess[str], start: float) -> Step:
        step = Step(host, args, proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start)
        self.steps.append(step)
        return step

    def seed_b_cache(self) -> None:
        """Give host B the blobs host A downloaded or wrote (hard links; both sides verify them by sha256).

        Never the layer cache's entries or the built bases: without an entry naming them, host B finds
        a blob only by a digest a lock pins (a wheel, a .deb), so it compresses and assembles everything itself.
        """
        _seed_blobs(self.cache_a, self.cache_b)


def _seed_blobs(src: Path, dst: Path) -> None:
    """Hard-link the blob store of the cache ``src`` into the cache ``dst`` (``blobs/sha256/<hex>``)."""
    if (src / "blobs").is_dir():
        shutil.copytree(src / "blobs", dst / "blobs", copy_function=_link_or_copy, dirs_exist_ok=True)


def _link_or_copy(src: str, dst: str) -> None:
    if Path(dst).exists():
        return  # seeded before: the same content-addressed entry
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    """Host B entered (its chroot cached per machine), repro-build from this checkout installed in it."""
    pythons = {_example_python(), f"{sys.version_info.major}.{sys.version_info.minor}"}
    log: list[str] = []
    start = time.monotonic()
    try:
        with second_host(tuple(sorted(pythons)), log) as second:
            log.append(f"installed {install_repro_build(second)} in the chroot")
            log.append(f"second host ready in {time.monotonic() - start:.0f}s")
            work_a = tmp_path_factory.mktemp("host-a")
            seed = _user_cache()
            _seed_blobs(seed, work_a / "cache")
            hosts = Hosts(second, work_a, notes=log)
            try:
                yield hosts
            finally:
                # In the session's summary: what the second host cost, step by step.
                SUMMARY.extend([*log, *map(str, hosts.steps), f"all: {time.monotonic() - start:.0f}s"])
    except SecondHostUnavailable as e:
        unavailable("a second host (a Debian 13 chroot)", f"{e}\n" + "\n".join(log))


def _user_cache() -> Path:
    from reprobuild.cache import cache_root

    return cache_root()


def _example_python() -> str:
    data = tomllib.loads((REPO_ROOT / EXAMPLE / "pyproject.toml").read_text())
    return str(data["tool"]["repro-build"]["python"])


def _upstream(hosts: Hosts, name: str, source: Path) -> Path:
    """A bare repository in the exchange dir holding ``source``'s HEAD: both hosts clone from it."""
    bare = hosts.second.exchange / f"{name}.git"
    _git("init", "-q", "--bare", "--initial-branch=main", str(bare))
    _git("-C", str(source), "push", "-q", str(bare), "HEAD:refs/heads/main")
    return bare


@dataclass(frozen=True)
class Built:
    """The build manifests of every target on one host (paths on this machine)."""

    host: str
    manifests: dict[str, Path]

    def digest(self, target: str) -> str | None:
        path = self.manifests.get(target)
        if path is None or not path.is_file():
            return None
        return str(json.loads(path.read_text())["outputs"]["manifest_digest"])


def _failed(steps: list[Step]) -> str:
    bad = [s for s in steps if s.returncode != 0]
    return "\n\n".join(f"{s}\n{s.output[-3000:]}" for s in bad)


@dataclass(frozen=True)
class ExampleBuild:
    """`examples/hello-ml` built on both hosts: manifests, clones, and the steps it took."""

    a: Built
    b: Built
    clone_a: Path
    clone_b: str
    steps: list[Step]


@pytest.fixture(scope="module")
def example(hosts: Hosts) -> ExampleBuild:
    """`examples/hello-ml` at HEAD built on both hosts, each from its own clone."""
    first = len(hosts.steps)
    upstream = _upstream(hosts, "repro-build", REPO_ROOT)
    clone_a = hosts.work_a / "src" / "repro-build"
    _git("clone", "-q", upstream.as_uri(), str(clone_a))
    project_a = clone_a / EXAMPLE
    hosts.on_a("lock", "--check", "--project", str(project_a), cwd=clone_a)
    hosts.on_a("image", "--project", str(project_a), cwd=clone_a)
    a = Built("A", {t: project_a / "build" / t / "manifest.json" for t in EXAMPLE_TARGETS})

    hosts.seed_b_cache()
    clone_b = "/home/builder/checkouts/hello"
    clone = hosts.second.run(["git", "clone", "-q", hosts.second.inside(upstream), clone_b])
    assert clone.returncode == 0, clone.stderr
    out_b = hosts.second.exchange / "out-b" / "hello-ml"
    hosts.on_b("lock", "--check", "--project", EXAMPLE, cwd=clone_b)
    hosts.on_b("image", "--project", EXAMPLE, "--out-dir", hosts.second.inside(out_b), cwd=clone_b)
    b = Built("B", {t: out_b / t / "manifest.json" for t in EXAMPLE_TARGETS})
    return ExampleBuild(a, b, clone_a, clone_b, hosts.steps[first:])


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """The paths at which two JSON values differ, with both values (lists of equal length item by item)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += _differences(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: A {json.dumps(a)[:200]} | B {json.dumps(b)[:200]}"]


def explain(a: Path, b: Path) -> str:
    """``repro-build diff`` of the two images plus the build-manifest fields that differ."""
    parts = []
    if a.is_file() and b.is_file():
        diff = subprocess.run(
            [
                sys.executable,
                "-m",
                "reprobuild",
                "diff",
                f"oci-layout:{a.parent / 'oci'}",
                f"oci-layout:{b.parent / 'oci'}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        parts.append(f"$ repro-build diff oci-layout:A oci-layout:B\n{diff.stdout}{diff.stderr}")
        fields = _differences(json.loads(a.read_text()), json.loads(b.read_text()))
        parts.append("build manifests differ at:\n  " + "\n  ".join(fields))
    return "\n".join(parts)


def _assert_same_digests(a: Built, b: Built, targets: tuple[str, ...], steps: list[Step]) -> None:
    """Every target has one manifest digest on both hosts; else the diff, the steps and failed steps' output."""
    problems = []
    for target in targets:
        da, db = a.digest(target), b.digest(target)
        if da is None or db is None or da != db:
            problems.append(f"target {target}: A {da} | B {db}\n{explain(a.manifests[target], b.manifests[target])}")
    timings = "\n".join(str(s) for s in steps)
    failed = _failed(steps)
    assert not problems, "\n\n".join([*problems, "steps:\n" + timings, *([failed] if failed else [])])


def test_example_same_digest_on_both_hosts(example: ExampleBuild) -> None:
    _assert_same_digests(example.a, example.b, EXAMPLE_TARGETS, example.steps)


def test_example_manifests_name_no_host_path(example: ExampleBuild, hosts: Hosts) -> None:
    """Neither host's clone, output, exchange or temp directory reaches a build manifest (nor its clone URL)."""
    paths = [str(example.clone_a), str(hosts.work_a), str(hosts.second.scratch), example.clone_b, "/exchange"]
    for built in (example.a, example.b):
        for target in EXAMPLE_TARGETS:
            manifest = built.manifests[target]
            assert manifest.is_file(), f"host {built.host} built no {target}:\n{_failed(example.steps)}"
            text = manifest.read_text()
            leaked = [p for p in paths if p in text]
            assert not leaked, f"host {built.host}, {target}: the manifest names {leaked}"


def project_pycs(manifest: Path) -> list[str]:
    """The ``.pyc`` files in the image's project layer (read from the OCI layout beside the manifest)."""
    data = json.loads(manifest.read_text())
    found: list[str] = []
    for layer in data["outputs"]["layers"]:
        if not str(layer["holds"]).startswith("project "):
            continue
        blob = manifest.parent / "oci" / "blobs" / "sha256" / str(layer["digest"]).removeprefix("sha256:")
        with tarfile.open(blob, mode="r:*") as tar:
            found += [m.name for m in tar.getmembers() if m.name.endswith(".pyc")]
    return found


def test_example_images_carry_byte_code_of_the_images_python(example: ExampleBuild) -> None:
    """Host B runs Python 3.13, the image has 3.11: its byte-code must still be there, for 3.11."""
    tag = "cpython-" + _example_python().replace(".", "")
    for built in (example.a, example.b):
        for target in EXAMPLE_TARGETS:
            manifest = built.manifests[target]
            assert manifest.is_file(), f"host {built.host} built no {target}:\n{_failed(example.steps)}"
            pycs = project_pycs(manifest)
            assert any(f".{tag}.pyc" in name for name in pycs), (
                f"host {built.host}, target {target}: no {tag} byte-code in the project layer ({pycs})"
            )


def test_example_bases_carry_the_standard_librarys_byte_code(example: ExampleBuild) -> None:
    """The Debian base's second layer holds the standard library's pyc for the image's Python on both hosts (and
    `test_example_same_digest_on_both_hosts` holds it to one digest: host B's own Python is 3.13)."""
    tag = "cpython-" + _example_python().replace(".", "")
    minor = _example_python()
    for built in (example.a, example.b):
        for target in EXAMPLE_TARGETS:
            manifest = built.manifests[target]
            assert manifest.is_file(), f"host {built.host} built no {target}:\n{_failed(example.steps)}"
            layers = json.loads(manifest.read_text())["outputs"]["layers"]
            assert [layer["holds"] for layer in layers[:2]] == ["base", "base"]
            blob = manifest.parent / "oci" / "blobs" / "sha256" / str(layers[1]["digest"]).removeprefix("sha256:")
            with tarfile.open(blob, mode="r:*") as tar:
                names = set(tar.getnames())
            for module in ("os", "re/__init__", "json/__init__", "encodings/utf_8"):
                head, _, name = f"usr/lib/python{minor}/{module}".rpartition("/")
                assert f"{head}/__pycache__/{name}.{tag}.pyc" in names, (built.host, target, module)


def test_second_host_verifies_the_first_hosts_manifests(example: ExampleBuild, hosts: Hosts) -> None:
    """A third party on host B with the manifest, a clone, an empty cache and its own Debian 13 mirror.

    Host B's apt sources carry only trixie; the bookworm base's .debs come through ``--mirror`` (the archive
    its own sources name), checked against the base lock's sha256 like everything else.
    """
    third_party_cache = hosts.second.exchange / "cache-third-party"
    results = []
    for target in EXAMPLE_TARGETS:
        given = hosts.second.exchange / "from-a" / target / "manifest.json"
        given.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(example.a.manifests[target], given)
        results.append(
            hosts.on_b(
                "verify",
                hosts.second.inside(given),
                "--repo",
                example.clone_b,
                "--mirror",
                hosts.second.apt_mirror(),
                cwd=example.clone_b,
                cache=third_party_cache,
            )
        )
    assert all(r.returncode == 0 for r in results), _failed(results)


def test_first_host_verifies_the_second_hosts_manifest(example: ExampleBuild, hosts: Hosts, tmp_path: Path) -> None:
    """Host A, with its warm cache, rebuilds what host B built (`cuda`, which holds everything `cpu` does)."""
    results = []
    for target in ("cuda",):
        given = tmp_path / target / "manifest.json"
        given.parent.mkdir(parents=True)
        shutil.copy(example.b.manifests[target], given)
        results.append(hosts.on_a("verify", str(given), "--repo", str(example.clone_a), cwd=example.clone_a))
    assert all(r.returncode == 0 for r in results), _failed(results)


def test_zero_config_project_same_digest_on_both_hosts(hosts: Hosts) -> None:
    """No `[tool.repro-build]`: locked on host A (its defaults), rebuilt on host B from the lock alone."""
    source = hosts.work_a / "zero-config-origin"
    (source / "src" / "zero_config").mkdir(parents=True)
    (source / "pyproject.toml").write_text(ZERO_CONFIG_PYPROJECT)
    (source / "src" / "zero_config" / "__init__.py").write_text(ZERO_CONFIG_MODULE)
    (source / ".gitignore").write_text("build/\ndist/\n")
    first = len(hosts.steps)
    locked = hosts.on_a("lock", "--project", str(source), cwd=source)
    assert locked.returncode == 0, locked.output
    git_commit(source)
    upstream = _upstream(hosts, "zero-config", source)

    clone_a = hosts.work_a / "elsewhere" / "zero-config"
    _git("clone", "-q", upstream.as_uri(), str(clone_a))
    _git("-C", str(clone_a), "remote", "set-url", "origin", ZERO_CONFIG_REMOTES[0])
    hosts.on_a("lock", "--check", cwd=clone_a)
    hosts.on_a("image", cwd=clone_a)
    a = Built("A", {"cpu": clone_a / "build" / "cpu" / "manifest.json"})

    hosts.seed_b_cache()
    clone_b = "/srv/build/zc"
    cloned = hosts.second.run(
        [
            "sh",
            "-euc",
            'git clone -q "$1" "$2" && git -C "$2" remote set-url origin "$3"',
            "sh",
            hosts.second.inside(upstream),
            clone_b,
            ZERO_CONFIG_REMOTES[1],
        ]
    )
    assert cloned.returncode == 0, cloned.stderr
    out_b = hosts.second.exchange / "out-b" / "zero-config"
    hosts.on_b("lock", "--check", cwd=clone_b)
    hosts.on_b("image", "--out-dir", hosts.second.inside(out_b), cwd=clone_b)
    b = Built("B", {"cpu": out_b / "cpu" / "manifest.json"})
    _assert_same_digests(a, b, ("cpu",), hosts.steps[first:])
