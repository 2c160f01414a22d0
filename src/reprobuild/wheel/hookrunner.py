"""A wheel-build runner that calls the project's PEP 517 hooks in a cached backend environment.

What ``uv build --wheel`` does, minus creating and filling a fresh environment each time: in the
environment of :mod:`reprobuild.wheel.backendenv` (the locked backend and everything
``repro-locks/build.txt`` pins, hash-checked by uv when it was created and re-hashed before each use),
it calls ``get_requires_for_build_wheel`` and then ``build_wheel`` of the backend the project declares,
each in a fresh process through :mod:`pyproject_hooks` (the PyPA implementation pip and ``build`` use), in
the source directory, as uv does. The backend gets the same variables as under ``uv build``
(:func:`reprobuild.wheel.buildenv.normalised_env` and the host's whitelist), with the environment's
``bin`` first on ``PATH`` and ``VIRTUAL_ENV`` set, as uv sets them, and the same umask.

Every requirement the backend asks for at build time must be installed in the environment (it is in
the lock: ``lock`` asked the backend the same question); otherwise the build stops with the hint to lock
again, as ``uv build --require-hashes`` would. The environment holds the whole lock, which may be more
than ``uv build`` installs when the backend asks for something only for the sdist. The wheel is then
canonicalised as before (:mod:`reprobuild.wheel.canonical_zip`), so its bytes are those of the ``uv
build`` path (``tests/wheel/test_hookrunner.py`` builds every fixture project both ways).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from reprobuild.epoch import Epoch
from reprobuild.errors import WheelError
from reprobuild.lockdir import RELOCK_HINT
from reprobuild.wheel.backendenv import BackendEnv
from reprobuild.wheel.buildenv import BUILD_UMASK, Step, backend_failure, host_env, normalised_env, user_flags
from reprobuild.wheel.outputs import Builder

_DIST_INFO = re.compile(r"^(?P<name>[^-/]+)-(?P<version>[^-/]+)\.dist-info$")


def installed_distributions(env: BackendEnv) -> dict[str, Version]:
    """Canonical name -> version of every distribution in the environment's ``site-packages``."""
    out: dict[str, Version] = {}
    for site in sorted(env.root.glob("lib/python*/site-packages")):
        for entry in site.iterdir():
            m = _DIST_INFO.match(entry.name)
            if m is None:
                continue
            try:
                out[canonicalize_name(m["name"])] = Version(m["version"])
            except InvalidVersion:
                continue
    return out


def _python_version(env: BackendEnv) -> str | None:
    """``X.Y.Z`` of the environment's interpreter, from ``pyvenv.cfg`` (uv writes ``version_info``)."""
    try:
        for line in (env.root / "pyvenv.cfg").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version_info", "version"):
                return value.strip()
    except OSError:
        return None
    return None


def unmet(requirements: Sequence[str], env: BackendEnv) -> list[str]:
    """The requirements (as the backend wrote them) that no installed distribution satisfies."""
    installed = installed_distributions(env)
    markers: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    full = _python_version(env)
    if full:
        parts = full.split(".")
        markers.update(python_full_version=".".join(parts[:3]), python_version=".".join(parts[:2]))
    missing: list[str] = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            missing.append(text)
            continue
        if req.marker is not None and not req.marker.evaluate(markers):
            continue
        version = installed.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            missing.append(text)
    return missing


@dataclass(frozen=True)
class HookRunner:
    """Builds through the backend's hooks in ``env`` (see the module docstring); a :class:`Runner`.

    ``env`` is being checked (every file hashed again) or made while the source is exported: a build
    waits for it only when it calls the backend, and fails with its error.
    """

    env: Future[BackendEnv]
    lock: Path
    entry_point: str
    backend_path: tuple[str, ...]
    epoch: Epoch
    environ: Mapping[str, str]
    scm: Mapping[str, str] = field(default_factory=dict)

    def build(self, step: Step, source: Path, out_dir: Path, build_root: Path, *, deps_cached: bool = False) -> None:
        import pyproject_hooks

        env = self.env.result()
        base = {**host_env(self.environ), **normalised_env(str(build_root), self.epoch, self.flags())}
        bin_dir = str(env.root / "bin")
        base["PATH"] = os.pathsep.join(p for p in (bin_dir, self.environ.get("PATH", os.defpath)) if p)
        base["VIRTUAL_ENV"] = str(env.root)
        (build_root / "tmp").mkdir(exist_ok=True)

        def runner(cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None) -> None:
            proc = subprocess.run(
                list(cmd),
                cwd=cwd,
                env={**base, **(extra_environ or {})},
                capture_output=True,
                text=True,
                umask=BUILD_UMASK,
                check=False,
            )
            if proc.returncode != 0:
                raise backend_failure(step, proc.stderr or proc.stdout, self.lock)

        caller = pyproject_hooks.BuildBackendHookCaller(
            str(source),
            self.entry_point,
            backend_path=list(self.backend_path) or None,
            runner=runner,
            python_executable=str(env.interpreter),
        )
        try:
            asked = caller.get_requires_for_build_wheel() if step == "wheel" else caller.get_requires_for_build_sdist()
            missing = unmet([str(r) for r in asked], env)
            if missing:
                raise WheelError(
                    f"building the {step} failed: the build backend `{self.entry_point}` asks for "
                    f"{', '.join(missing)}, which {self.lock.name} does not pin",
                    hint=f"a build requirement is missing from {self.lock.name}: " + RELOCK_HINT,
                )
            out_dir.mkdir(parents=True, exist_ok=True)
            if step == "wheel":
                caller.build_wheel(str(out_dir))
            else:
                caller.build_sdist(str(out_dir))
        except (pyproject_hooks.BackendUnavailable, pyproject_hooks.HookMissing) as e:
            raise WheelError(
                f"building the {step} failed: the build backend `{self.entry_point}` could not be called ({e})",
                hint="check `build-system.build-backend` and `backend-path` in pyproject.toml",
            ) from e

    def builder(self) -> Builder | None:
        return None

    def flags(self) -> Mapping[str, str]:
        return {**user_flags(self.environ), **self.scm}


__all__ = ["HookRunner", "installed_distributions", "unmet"]
