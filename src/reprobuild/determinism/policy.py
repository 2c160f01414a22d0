"""A target's determinism policy and the files that carry it into an image.

Files, all in the image's site-packages directory:

``_repro_build_determinism.py``
    :mod:`reprobuild.determinism.hook`, verbatim (stdlib only, imported at start-up through the .pth).
``_repro_build_determinism_doctor.py``, ``_repro_build_determinism_facts.py``, ``_repro_build_determinism_selftest.py``
    :mod:`reprobuild.determinism.hookdoctor`, :mod:`~reprobuild.determinism.hookfacts` and
    :mod:`~reprobuild.determinism.selftest`, verbatim (``python -m _repro_build_determinism_doctor``).
``_repro_build_determinism.json``
    the policy: flag sets, the FINAL env they require (after the target's ``env`` overrides and removals),
    the frameworks whose runtime switches must be on, the switches, the seed.
``repro-build-determinism.pth``
    ``import _repro_build_determinism as m; m.install((...), seed, switches)``, written only when the policy
    covers a framework with runtime switches or a seed, so an image without either pays nothing at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from reprobuild.determinism.flagsets import CUDA_ENV, XLA_FLAGS, env_for, merge_xla_flags
from reprobuild.fsutil import human_json_text

POLICY_SCHEMA = 2
HOOK_MODULE = "_repro_build_determinism"
DOCTOR_MODULE = "_repro_build_determinism_doctor"
FACTS_MODULE = "_repro_build_determinism_facts"
SELFTEST_MODULE = "_repro_build_determinism_selftest"
PTH_NAME = "repro-build-determinism.pth"
#: The env variable that carries the seed into the image (and overrides it at run time).
SEED_ENV = "REPRO_BUILD_SEED"
#: The env variable by which the NVIDIA container runtime refuses a driver older than the CUDA the image needs.
REQUIRE_CUDA_ENV = "NVIDIA_REQUIRE_CUDA"
#: Flag sets whose framework also has runtime switches that the hook turns on.
RUNTIME_FRAMEWORKS = {"torch": "torch", "tensorflow": "tensorflow"}
#: numpy's legacy global RandomState takes seeds below 2**32; the other frameworks take at least that.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Switches:
    """The torch runtime switches the hook sets (``[tool.repro-build] determinism = {...}``)."""

    deterministic_algorithms: bool = True
    cudnn_benchmark: bool = False
    warn_only: bool = False

    def to_dict(self) -> dict[str, bool]:
        return {
            "cudnn_benchmark": self.cudnn_benchmark,
            "deterministic_algorithms": self.deterministic_algorithms,
            "warn_only": self.warn_only,
        }


@dataclass(frozen=True)
class Policy:
    """The determinism policy of one target.

    ``user_env`` is the target's effective ``env`` (config then target; it wins over the flag sets, except that
    ``XLA_FLAGS`` is merged option by option) and ``unset`` the variables the config removes (``NAME = false``).
    """

    sets: tuple[str, ...]
    cuda: bool = False
    seed: int | None = None
    switches: Switches = field(default_factory=Switches)
    user_env: tuple[tuple[str, str], ...] = ()
    unset: tuple[str, ...] = ()
    require_cuda: str | None = None

    @property
    def flag_env(self) -> dict[str, str]:
        """The env of the flag sets alone (plus the NVIDIA toolkit env for CUDA), before any override."""
        env = env_for(self.sets)
        if self.cuda:
            env.update(CUDA_ENV)
        if self.require_cuda:
            env[REQUIRE_CUDA_ENV] = self.require_cuda
        return env

    @property
    def env(self) -> dict[str, str]:
        """The FINAL value of every determinism variable the image carries: what the doctor checks."""
        env = self.flag_env
        for name, value in self.user_env:
            if name in env:
                env[name] = merge_xla_flags(env[name], value) if name == XLA_FLAGS else value
        for name in self.unset:
            env.pop(name, None)
        return env

    @property
    def overrides(self) -> dict[str, str | None]:
        """Flag-set variables the config changed (new value) or removed (``None``)."""
        final = self.env
        return {name: final.get(name) for name, value in sorted(self.flag_env.items()) if final.get(name) != value}

    @property
    def image_env(self) -> dict[str, str]:
        """What the image config's ``Env`` gets from the policy, on top of the config's ``env``."""
        env = self.env
        if self.seed is not None:
            env[SEED_ENV] = str(self.seed)
        return env

    @property
    def runtime(self) -> tuple[str, ...]:
        """Frameworks whose runtime switches must be on when they are present."""
        return tuple(RUNTIME_FRAMEWORKS[s] for s in self.sets if s in RUNTIME_FRAMEWORKS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "overrides": self.overrides,
            "runtime": list(self.runtime),
            "schema": POLICY_SCHEMA,
            "seed": self.seed,
            "sets": list(self.sets),
            "switches": self.switches.to_dict(),
            "unset": sorted(self.unset),
        }


def effective_env(
    layers: Iterable[tuple[Mapping[str, str], Iterable[str]]],
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """``(user_env, unset)`` from ``(env, removed names)`` layers, outermost first (config, then target).

    A later layer's value brings back a variable an earlier one removed, and a later removal drops a value.
    """
    values: dict[str, str] = {}
    removed: set[str] = set()
    for env, names in layers:
        for name, value in env.items():
            values[name] = value
            removed.discard(name)
        for name in names:
            values.pop(name, None)
            removed.add(name)
    return tuple(sorted(values.items())), tuple(sorted(removed))


def _source(name: str) -> bytes:
    return resources.files("reprobuild.determinism").joinpath(name).read_bytes()


def pth_line(policy: Policy) -> str | None:
    """The ``.pth`` line that installs the hook, or None when nothing needs it at run time."""
    if not policy.runtime and policy.seed is None:
        return None
    frameworks = "".join(f"{f!r}, " for f in policy.runtime)
    s = policy.switches
    switches = (s.deterministic_algorithms, s.cudnn_benchmark, s.warn_only)
    return f"import {HOOK_MODULE} as _m; _m.install(({frameworks}), {policy.seed!r}, {switches!r}); del _m\n"


def image_files(policy: Policy) -> list[tuple[str, bytes]]:
    """``(file name, bytes)`` to put in the image's site-packages, sorted by name."""
    files = [
        (f"{HOOK_MODULE}.py", _source("hook.py")),
        (f"{DOCTOR_MODULE}.py", _source("hookdoctor.py")),
        (f"{FACTS_MODULE}.py", _source("hookfacts.py")),
        (f"{SELFTEST_MODULE}.py", _source("selftest.py")),
        (f"{HOOK_MODULE}.json", human_json_text(policy.to_dict()).encode()),
    ]
    line = pth_line(policy)
    if line is not None:
        files.append((PTH_NAME, line.encode()))
    return sorted(files)
