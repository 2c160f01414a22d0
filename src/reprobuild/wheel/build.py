"""Build a project's sdist and wheel through ``uv build`` in a normalised environment, then canonicalise.

Pipeline (each step in the project's *build root*, a fixed path emptied before and removed after the build:
:mod:`reprobuild.wheel.buildroot`)::

    source snapshot ──export──▶ <root>/src ──uv build --sdist──▶ canonical sdist
    canonical sdist ──extract──▶ <root>/unpack/<name>-<version> ──uv build --wheel──▶ canonical wheel

The wheel is built **from the sdist**, as pypa/build and plain ``uv build`` do: it proves that the
sdist is complete, and the wheel then depends only on the bytes that are shipped. (``wheel=True,
sdist=False`` builds the wheel straight from the exported source.) Both steps run ``uv build`` with
``--build-constraints repro-locks/build.txt --require-hashes``, so the backend and everything it pulls are
pinned by hash, in uv's default build isolation.

The environment handed to the backend (:mod:`reprobuild.wheel.buildenv`) is a whitelist of the
host's, the caller's compiler flags and normalised variables, with the build root mapped away.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import tarfile
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

from reprobuild.config import Config
from reprobuild.epoch import Epoch, resolve_epoch
from reprobuild.errors import WheelError
from reprobuild.fsutil import atomic_write_bytes, atomic_write_text, human_json_text, make_output_dir
from reprobuild.lock import check_build_lock
from reprobuild.uvbin import find_uv, uv_version
from reprobuild.wheel.buildenv import (
    BUILD_UMASK,
    Log,
    Runner,
    Step,
    backend_failure,
    host_env,
    normalised_env,
    recorded_env,
    user_flags,
)
from reprobuild.wheel.buildroot import fixed_build_root
from reprobuild.wheel.canonical_sdist import canonicalize_sdist, gzip_compressor
from reprobuild.wheel.canonical_zip import canonicalize_wheel, zip_compressor
from reprobuild.wheel.outputs import (
    Artifact,
    Backend,
    Builder,
    WheelRecord,
    backend_distribution,
    read_build_pins,
)
from reprobuild.wheel.source import SourceTree, export, snapshot
from reprobuild.wheel.vcs import (
    carry_history,
    commit_export,
    needs_history,
    scm_environment,
    scm_version,
    uses_scm,
)

if TYPE_CHECKING:
    from reprobuild.wheel.backendenv import BackendEnv

#: uv's words when ``--offline`` needed something that is not in its cache.
_OFFLINE_MISS = re.compile(r"network (connectivity )?(is|was) disabled|not found in the cache", re.IGNORECASE)


@dataclass(frozen=True)
class HostRunner:
    """``uv build`` on this machine with the normalised environment and umask :data:`BUILD_UMASK`."""

    lock: Path
    python: str
    epoch: Epoch
    environ: Mapping[str, str]
    #: Variables derived from the commit for the backend (``SETUPTOOLS_SCM_PRETEND_VERSION``); recorded.
    scm: Mapping[str, str] = field(default_factory=dict)
    #: The build dependencies come from uv's cache only (``verify --offline``).
    offline: bool = False

    def build(self, step: Step, source: Path, out_dir: Path, build_root: Path, *, deps_cached: bool = False) -> None:
        env = {**host_env(self.environ), **normalised_env(str(build_root), self.epoch, self.flags())}
        (build_root / "tmp").mkdir(exist_ok=True)
        if deps_cached and not self.offline:
            # The sdist step has just put the same hash-pinned build dependencies in uv's cache (or an
            # earlier build did): skip the index round trips (about 0.4 s a step; uv revalidates every
            # page it has). uv still checks the hashes; if something is missing from the cache after
            # all, fall back to a normal run.
            proc = self._run(step, source, out_dir, build_root, env, offline=True)
            if proc.returncode == 0:
                return
            if not _OFFLINE_MISS.search(proc.stderr + proc.stdout):
                raise backend_failure(step, proc.stderr or proc.stdout, self.lock)
        proc = self._run(step, source, out_dir, build_root, env, offline=self.offline)
        if proc.returncode != 0:
            raise backend_failure(step, proc.stderr or proc.stdout, self.lock)

    def _run(
        self, step: Step, source: Path, out_dir: Path, build_root: Path, env: dict[str, str], *, offline: bool
    ) -> subprocess.CompletedProcess[str]:
        cmd = [
            find_uv(),
            "build",
            str(source),
            f"--{step}",
            "--out-dir",
            str(out_dir),
            "--build-constraints",
            str(self.lock),
            "--require-hashes",
            "--python",
            self.python,
            "--no-create-gitignore",
            "--no-progress",
            "--color",
            "never",
            *(["--offline"] if offline else []),
        ]
        return subprocess.run(
            cmd, env=env, cwd=build_root, capture_output=True, text=True, umask=BUILD_UMASK, check=False
        )

    def builder(self) -> Builder | None:
        return None

    def flags(self) -> Mapping[str, str]:
        return {**user_flags(self.environ), **self.scm}


@dataclass(frozen=True)
class Built:
    """Canonical artifacts in a build root."""

    sdist: Path | None
    wheel: Path | None
    wheel_from: Literal["sdist", "source"] | None


def _single(out_dir: Path, suffix: str, step: Step) -> Path:
    found = sorted(p for p in out_dir.iterdir() if p.name.endswith(suffix))
    if len(found) != 1:
        raise WheelError(
            f"`uv build --{step}` left {len(found)} `*{suffix}` files in its output directory, expected one"
        )
    return found[0]


def _safe_members(tar: tarfile.TarFile, origin: str) -> list[tarfile.TarInfo]:
    """The members an sdist may hold: regular files and directories inside the destination.

    For Pythons before 3.11.4, whose tarfile has no extraction filters (PEP 706); the ``data`` filter
    is used where it exists.
    """
    members = tar.getmembers()
    for m in members:
        parts = m.name.split("/")
        if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
            raise WheelError(f"{origin}: refusing member {m.name!r} (absolute, `..`, link or special file)")
        m.mode = 0o755 if m.isdir() or m.mode & 0o111 else 0o644
    return members


def _extract_sdist(sdist: Path, dest: Path) -> Path:
    """Unpack ``sdist`` into ``dest`` with tarfile's ``data`` filter; return its single top directory."""
    dest.mkdir()
    with tarfile.open(sdist, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest, members=_safe_members(tar, sdist.name))
    tops = sorted(dest.iterdir())
    if len(tops) != 1 or not tops[0].is_dir():
        raise WheelError(f"{sdist.name}: expected one top-level directory, found {[p.name for p in tops]}")
    return tops[0]


def build_in(
    build_root: Path,
    tree: SourceTree,
    epoch: Epoch,
    runner: Runner,
    *,
    sdist: bool = True,
    wheel: bool = True,
    reverse: bool = False,
    log: Log | None = None,
    history: bool = False,
    on_waiting: Callable[[], None] | None = None,
) -> Built:
    """Export ``tree`` under ``build_root`` and build canonical artifacts into ``build_root/final``.

    In git, the export is a repository too: one commit of its files, or with ``history`` (a backend that
    reads the version from git itself, :func:`reprobuild.wheel.vcs.needs_history`) the commit's own
    history and tags. ``on_waiting`` is called before the first backend call: from then on the build
    waits on the backend's processes."""
    say = log or (lambda _m: None)
    export(tree, build_root / "src", epoch_seconds=epoch.seconds, reverse=reverse)
    if tree.vcs == "git" and history and tree.commit:
        carry_history(build_root / "src", tree.root, tree.commit, epoch.seconds)
    elif tree.vcs == "git":
        commit_export(build_root / "src", epoch.seconds)
    out = build_root / "out"
    final = build_root / "final"
    out.mkdir()
    final.mkdir()
    sdist_path: Path | None = None
    wheel_path: Path | None = None
    if on_waiting is not None:
        on_waiting()
    if sdist:
        say("building the sdist")
        runner.build("sdist", build_root / "src", out / "sdist", build_root)
        raw = _single(out / "sdist", ".tar.gz", "sdist")
        _check_sdist_name(raw.name)
        sdist_path = final / raw.name
        sdist_path.write_bytes(canonicalize_sdist(raw.read_bytes(), epoch, raw.name, on_collapse=say))
    if wheel:
        source = _extract_sdist(sdist_path, build_root / "unpack") if sdist_path else build_root / "src"
        say(f"building the wheel from the {'sdist' if sdist_path else 'source'}")
        # Without an sdist step first, the backend is usually in uv's cache from an earlier build all the
        # same (an image after an app change): the offline attempt costs a fraction of a second when not.
        runner.build("wheel", source, out / "wheel", build_root, deps_cached=True)
        raw = _single(out / "wheel", ".whl", "wheel")
        _check_wheel_name(raw.name)
        wheel_path = final / raw.name
        wheel_path.write_bytes(canonicalize_wheel(raw.read_bytes(), epoch, raw.name))
    return Built(sdist_path, wheel_path, ("sdist" if sdist_path else "source") if wheel else None)


def _check_sdist_name(name: str) -> tuple[str, str]:
    try:
        n, v = parse_sdist_filename(name)
    except InvalidSdistFilename as e:
        raise WheelError(f"the backend wrote an sdist with an invalid name: {e}") from e
    return str(n), str(v)


def _check_wheel_name(name: str) -> tuple[str, str]:
    try:
        n, v, _b, _t = parse_wheel_filename(name)
    except InvalidWheelFilename as e:
        raise WheelError(f"the backend wrote a wheel with an invalid name: {e}") from e
    return str(n), str(v)


def say_left_out(tree: SourceTree, log: Log | None) -> None:
    """Name what a snapshot outside git left out (nothing is dropped silently)."""
    if log is not None:
        for entry in tree.left_out:
            log(f"not in the source: {entry}")


def scm_variables(config: Config, tree: SourceTree, lock: Path, *, offline: bool = False) -> dict[str, str]:
    """``SETUPTOOLS_SCM_PRETEND_VERSION`` for a git checkout whose locked build requirements include
    setuptools-scm or hatch-vcs (:mod:`reprobuild.wheel.vcs`); empty otherwise. ``offline``: the
    backend is installed from uv's cache only."""
    if tree.vcs != "git" or not uses_scm({pin.name for pin in read_build_pins(lock)}):
        return {}
    from reprobuild.pep517 import Backend, hook_environment

    backend = Backend(config.project.build_backend, config.project.backend_path, config.project.build_requires)
    with hook_environment(config.python, backend, lock=lock, offline=offline) as env:
        if not env.has_module("setuptools_scm"):
            return {}
        return scm_environment(scm_version(env.interpreter, tree.root))


def history_needed(tree: SourceTree, lock: Path) -> bool:
    """Whether the export needs the commit's git history (versioningit in the locked build requirements)."""
    return tree.vcs == "git" and needs_history({pin.name for pin in read_build_pins(lock)})


@contextlib.contextmanager
def checked_backend_env(
    config: Config,
    lock: Path,
    in_container: bool | None,
    *,
    offline: bool = False,
    cached_env: bool = False,
    on_create: Callable[[], None] | None = None,
) -> Iterator[Future[BackendEnv] | None]:
    """With ``cached_env`` for a build on the host: the cached environment of
    :mod:`reprobuild.wheel.backendenv` for ``lock`` (checked file by file, or made: then ``on_create`` is
    called first), on its own thread from now on, so that it is ready by the time the source is
    exported; ``None`` otherwise. Leaving the context waits for the thread."""
    from reprobuild.wheel.container import builder_configured

    use_container = builder_configured(config) if in_container is None else in_container
    if use_container or not cached_env:
        yield None
        return
    from reprobuild.wheel.backendenv import backend_env

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backend-env") as pool:
        yield pool.submit(backend_env, lock, config.python, offline=offline, on_create=on_create)


@contextlib.contextmanager
def open_runner(
    config: Config,
    epoch: Epoch,
    lock: Path,
    in_container: bool | None,
    scm: Mapping[str, str] | None = None,
    *,
    offline: bool = False,
    env: Future[BackendEnv] | None = None,
) -> Iterator[Runner]:
    """The runner for this build: in the builder image when ``in_container`` is true, or when it is
    None and the project names a builder (:mod:`reprobuild.wheel.container`); on the host otherwise.
    ``offline``: a host build takes the build dependencies from uv's cache only (the builder image
    always installs them from the hash-checked wheelhouse it is given, never from an index).
    ``env``: a host build calls the backend's hooks in this cached, verified environment
    (:func:`checked_backend_env`) instead of running ``uv build`` (:mod:`reprobuild.wheel.hookrunner`)."""
    from reprobuild.wheel.container import builder_configured, container_runner

    use_container = builder_configured(config) if in_container is None else in_container
    if use_container:
        with container_runner(config, epoch, lock, scm or {}) as runner:
            yield runner
    elif env is not None:
        from reprobuild.wheel.hookrunner import HookRunner

        project = config.project
        yield HookRunner(
            env, lock, project.build_backend, project.backend_path, epoch, dict(os.environ), dict(scm or {})
        )
    else:
        yield HostRunner(lock, config.python, epoch, dict(os.environ), dict(scm or {}), offline=offline)


def prepare(
    config: Config, *, allow_dirty: bool, epoch: Epoch | None, out_dir: Path | None, lock: Path | None = None
) -> tuple[Path, Epoch, SourceTree]:
    """The checks every build starts with: a current build lock (``lock``: already checked), the epoch, a
    clean (or allowed) tree."""
    lock = lock or check_build_lock(config)
    resolved = epoch or resolve_epoch(config.epoch_policy, config.root)
    tree = snapshot(config.root, allow_dirty=allow_dirty, outputs=out_dir)
    return lock, resolved, tree


def make_record(
    config: Config,
    built: Built,
    *,
    epoch: Epoch,
    tree: SourceTree,
    allow_dirty: bool,
    lock: Path,
    runner: Runner,
    artifact_dir: Path,
) -> WheelRecord:
    """The :class:`WheelRecord` of ``built`` (artifacts read from ``artifact_dir``)."""
    artifacts: list[Artifact] = []
    name, version = config.project.name, config.project.version or ""
    if built.sdist:
        artifacts.append(Artifact.of("sdist", artifact_dir / built.sdist.name))
        _n, version = _check_sdist_name(built.sdist.name)
    if built.wheel:
        artifacts.append(Artifact.of("wheel", artifact_dir / built.wheel.name))
        _n, version = _check_wheel_name(built.wheel.name)
    pins = read_build_pins(lock)
    dist, dist_version = backend_distribution(config.project.build_backend, pins)
    zc, gc = zip_compressor(), gzip_compressor()
    return WheelRecord(
        name=name,
        version=version,
        artifacts=tuple(artifacts),
        epoch=epoch.seconds,
        epoch_source=epoch.source,
        vcs=tree.vcs,
        commit=tree.commit,
        dirty=tree.dirty,
        allow_dirty=allow_dirty,
        wheel_from=built.wheel_from,
        backend=Backend(
            entry_point=config.project.build_backend,
            distribution=dist,
            version=dist_version,
            lock_sha256="sha256:" + hashlib.sha256(lock.read_bytes()).hexdigest(),
            pins=pins,
        ),
        uv_version=uv_version(),
        python=config.python,
        environment=tuple(sorted(recorded_env(epoch, runner.flags()).items())),
        compressors=(
            ("sdist", gc.describe()),
            ("wheel", zc.describe()),
        ),
        builder=runner.builder(),
    )


def build_wheel(
    config: Config,
    *,
    out_dir: Path | None = None,
    allow_dirty: bool = False,
    in_container: bool | None = None,
    epoch: Epoch | None = None,
    sdist: bool = True,
    wheel: bool = True,
    offline: bool = False,
    log: Log | None = None,
    cached_env: bool = False,
    on_waiting: Callable[[], None] | None = None,
) -> WheelRecord:
    """Build the project's canonical sdist and/or wheel into ``out_dir`` (default ``<project>/dist``).

    Raises :class:`StaleLockError` for a missing/stale ``repro-locks/build.txt``, :class:`ConfigError`
    when no epoch can be found (outside git without one), :class:`WheelError` for a dirty tree
    without ``allow_dirty`` or a failed build. Artifacts and ``<name>-<version>.build.json`` are
    written atomically; on failure nothing is written to ``out_dir``. ``epoch`` overrides the project's
    source date (``verify`` passes the recorded one); ``offline`` installs the build backend from uv's
    cache only; ``cached_env`` builds on the host through the backend's hooks in a cached environment
    (:func:`checked_backend_env`, checked while the source is read and exported), with the same bytes.
    ``on_waiting`` is called (perhaps more than once) when the build's own work is done and it waits on
    other processes: the backend's, or those making its environment or its container.
    """
    if not (sdist or wheel):
        raise WheelError("nothing to build: both the sdist and the wheel were switched off")
    dest = (out_dir or config.root / "dist").resolve()
    checked = check_build_lock(config)
    with checked_backend_env(
        config, checked, in_container, offline=offline, cached_env=cached_env, on_create=on_waiting
    ) as env:
        if env is None and on_waiting is not None:
            on_waiting()  # a container, or `uv build`'s own environment: nothing quick to wait for

        def backend_next() -> None:
            # The environment's check (many short system calls) is over before the caller gets busy: the
            # backend waits for it anyway.
            if env is not None:
                futures.wait([env])
            if on_waiting is not None:
                on_waiting()

        lock, resolved, tree = prepare(config, allow_dirty=allow_dirty, epoch=epoch, out_dir=dest, lock=checked)
        say_left_out(tree, log)
        with (
            open_runner(
                config,
                resolved,
                lock,
                in_container,
                scm_variables(config, tree, lock, offline=offline),
                offline=offline,
                env=env,
            ) as runner,
            fixed_build_root(config.project.name) as root,
        ):
            built = build_in(
                root,
                tree,
                resolved,
                runner,
                sdist=sdist,
                wheel=wheel,
                log=log,
                history=history_needed(tree, lock),
                on_waiting=backend_next if on_waiting is not None else None,
            )
            record = make_record(
                config,
                built,
                epoch=resolved,
                tree=tree,
                allow_dirty=allow_dirty,
                lock=lock,
                runner=runner,
                artifact_dir=root / "final",
            )
            make_output_dir(dest)  # only once the build succeeded: a failed one leaves no empty `dist/`
            for path in (built.sdist, built.wheel):
                if path is not None:
                    atomic_write_bytes(dest / path.name, path.read_bytes())
    atomic_write_text(dest / record.record_filename, human_json_text(record.to_dict()))
    return record


__all__ = ["Built", "HostRunner", "build_in", "build_wheel"]
