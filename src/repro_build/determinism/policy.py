"""A target's determinism policy and the files that carry it into an image.

Files, all in the image's site-packages directory:

``_repro_build_determinism.py``
    :mod:`repro_build.determinism.hook`, verbatim (stdlib only, imported at start-up through the .pth).
``_repro_build_determinism_doctor.py``
    :mod:`repro_build.determinism.hookdoctor`, verbatim (``python -m _repro_build_determinism_doctor``).
``_repro_build_determinism.json``
    the policy: flag sets, the env they require, the frameworks whose runtime switches must be on.
``repro-build-determinism.pth``
    ``import _repro_build_determinism as m; m.install((...))``, written only when the policy covers a
    framework with runtime switches, so an image without torch/tensorflow pays nothing at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from repro_build.determinism.flagsets import CUDA_ENV, env_for
from repro_build.fsutil import human_json_text

POLICY_SCHEMA = 1
HOOK_MODULE = "_repro_build_determinism"
DOCTOR_MODULE = "_repro_build_determinism_doctor"
PTH_NAME = "repro-build-determinism.pth"
#: Flag sets whose framework also has runtime switches that the hook turns on.
RUNTIME_FRAMEWORKS = {"torch": "torch", "tensorflow": "tensorflow"}


@dataclass(frozen=True)
class Policy:
    """The determinism policy of one target."""

    sets: tuple[str, ...]
    cuda: bool = False

    @property
    def env(self) -> dict[str, str]:
        """The env the image config must carry (flag sets, plus the NVIDIA toolkit env for CUDA)."""
        env = env_for(self.sets)
        if self.cuda:
            env.update(CUDA_ENV)
        return env

    @property
    def runtime(self) -> tuple[str, ...]:
        """Frameworks whose runtime switches must be on when they are present."""
        return tuple(RUNTIME_FRAMEWORKS[s] for s in self.sets if s in RUNTIME_FRAMEWORKS)

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "runtime": list(self.runtime), "schema": POLICY_SCHEMA, "sets": list(self.sets)}


def _source(name: str) -> bytes:
    return resources.files("repro_build.determinism").joinpath(name).read_bytes()


def image_files(policy: Policy) -> list[tuple[str, bytes]]:
    """``(file name, bytes)`` to put in the image's site-packages, sorted by name."""
    files = [
        (f"{HOOK_MODULE}.py", _source("hook.py")),
        (f"{DOCTOR_MODULE}.py", _source("hookdoctor.py")),
        (f"{HOOK_MODULE}.json", human_json_text(policy.to_dict()).encode()),
    ]
    if policy.runtime:
        frameworks = ", ".join(repr(f) for f in policy.runtime)
        line = f"import {HOOK_MODULE} as _m; _m.install(({frameworks},)); del _m\n"
        files.append((PTH_NAME, line.encode()))
    return sorted(files)


def policy_for(sets: Iterable[str], *, cuda: bool) -> Policy:
    return Policy(tuple(sets), cuda)
