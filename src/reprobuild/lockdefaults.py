"""The values a project leaves unset, as its lock recorded them: the lock, once written, decides.

A project need not say which Python, architecture or manylinux tag its images are for; the first
``repro-build lock`` takes them from the running host (or repro-build's defaults) and records them in
``repro-locks/inputs.json``: per lock (``python``, ``python-platform``) and for the project (``defaults``).
From then on every command on any host (``lock --check``, ``image``, ``verify``, and ``lock`` itself)
reads them back from there, so a project locked on a Python 3.11 amd64 machine stays a Python 3.11
amd64 project on a Python 3.13 or arm64 one. Only an explicit setting in ``[tool.repro-build]`` wins
over the record, and ``lock --check`` reports that change as it reports any other.

This module reads the JSON leniently (anything malformed counts as "nothing recorded"): the lock
commands report a broken ``inputs.json`` themselves, with their own hint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from reprobuild.platforms import ARCHES

#: uv's ``--python-platform`` architecture names -> OCI architecture names.
_ARCH_OF_TRIPLE = {machine: arch for arch, machine in ARCHES.items()}


@dataclass(frozen=True)
class LockedTarget:
    """What one ``repro-locks/<target>.txt`` was resolved for."""

    python: str | None
    arch: str | None  # OCI name: amd64 / arm64
    manylinux: str | None


@dataclass(frozen=True)
class LockedDefaults:
    """The project-wide defaults (``defaults`` in inputs.json) and each target's recorded values."""

    python: str | None = None
    platform: str | None = None
    manylinux: str | None = None
    targets: Mapping[str, LockedTarget] = field(default_factory=lambda: MappingProxyType({}))

    def target(self, name: str) -> LockedTarget:
        return self.targets.get(name, LockedTarget(None, None, None))

    @property
    def any_python(self) -> str | None:
        """The project's recorded Python: ``defaults.python``, else the one every target lock shares."""
        if self.python:
            return self.python
        found = {t.python for t in self.targets.values() if t.python}
        return found.pop() if len(found) == 1 else None

    @property
    def any_arch(self) -> str | None:
        if self.platform:
            return self.platform.split("/", 1)[-1]
        found = {t.arch for t in self.targets.values() if t.arch}
        return found.pop() if len(found) == 1 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _target(inputs: Mapping[str, Any]) -> LockedTarget:
    triple = _str(inputs.get("python-platform"))
    arch = many = None
    if triple and "-" in triple:
        machine, many = triple.split("-", 1)
        arch = _ARCH_OF_TRIPLE.get(machine)
    return LockedTarget(_str(inputs.get("python")), arch, many if arch else None)


def read_locked_defaults(locks_dir: Path) -> LockedDefaults:
    """What ``locks_dir/inputs.json`` records (empty when there is no readable one)."""
    try:
        data = json.loads((locks_dir / "inputs.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return LockedDefaults()
    if not isinstance(data, dict) or not isinstance(data.get("locks"), dict):
        return LockedDefaults()
    targets = {
        name.removesuffix(".txt"): _target(entry["inputs"])
        for name, entry in data["locks"].items()
        if name.endswith(".txt") and isinstance(entry, dict) and isinstance(entry.get("inputs"), dict)
    }
    raw = data.get("defaults")
    defaults: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return LockedDefaults(
        python=_str(defaults.get("python")),
        platform=_str(defaults.get("platform")),
        manylinux=_str(defaults.get("manylinux")),
        targets=MappingProxyType(targets),
    )
