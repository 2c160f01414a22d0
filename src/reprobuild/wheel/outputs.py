"""The build record: what a ``repro-build wheel`` run produced and from what (embedded in the build manifest).

Written next to the artifacts as ``<name>-<version>.build.json`` (indented, sorted keys, trailing
newline). Everything in it is derived from the inputs, so two reproducible builds write the same record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from reprobuild.errors import WheelError

#: Version of the record layout; bump when a field changes meaning.
RECORD_SCHEMA = 1

ArtifactKind = Literal["sdist", "wheel"]


@dataclass(frozen=True)
class Artifact:
    """One file in ``dist/``."""

    kind: ArtifactKind
    filename: str
    sha256: str  # "sha256:<hex>"
    size: int

    @classmethod
    def of(cls, kind: ArtifactKind, path: Path) -> Artifact:
        data = path.read_bytes()
        return cls(kind, path.name, "sha256:" + hashlib.sha256(data).hexdigest(), len(data))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "filename": self.filename, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Pin:
    """One ``name==version`` line of ``repro-locks/build.txt`` (a universal lock may pin a name twice, by marker)."""

    name: str
    version: str
    marker: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "marker": self.marker}


@dataclass(frozen=True)
class Backend:
    """The PEP 517 backend as locked: its entry point, the distribution providing it and its version."""

    entry_point: str
    distribution: str | None
    version: str | None
    lock_sha256: str
    pins: tuple[Pin, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry-point": self.entry_point,
            "distribution": self.distribution,
            "version": self.version,
            "build-lock-sha256": self.lock_sha256,
            "pins": [p.to_dict() for p in self.pins],
        }


@dataclass(frozen=True)
class Builder:
    """The container image a build ran in (``--in-container``)."""

    image: str
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "digest": self.digest}


@dataclass(frozen=True)
class WheelRecord:
    """What one build produced (see the module docstring)."""

    name: str
    version: str
    artifacts: tuple[Artifact, ...]
    epoch: int
    epoch_source: str
    vcs: str | None
    commit: str | None
    dirty: bool | None
    allow_dirty: bool
    wheel_from: Literal["sdist", "source"] | None
    backend: Backend
    uv_version: str
    python: str
    environment: tuple[tuple[str, str], ...]
    compressors: tuple[tuple[str, str], ...]
    builder: Builder | None

    @property
    def record_filename(self) -> str:
        return f"{canonicalize_name(self.name).replace('-', '_')}-{self.version}.build.json"

    def artifact(self, kind: ArtifactKind) -> Artifact | None:
        return next((a for a in self.artifacts if a.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": RECORD_SCHEMA,
            "generated-by": "repro-build wheel",
            "name": self.name,
            "version": self.version,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "source-date-epoch": {"seconds": self.epoch, "source": self.epoch_source},
            "source": {"vcs": self.vcs, "commit": self.commit, "dirty": self.dirty, "allow-dirty": self.allow_dirty},
            "wheel-built-from": self.wheel_from,
            "backend": self.backend.to_dict(),
            "uv": self.uv_version,
            "python": self.python,
            "environment": dict(self.environment),
            "compressors": dict(self.compressors),
            "builder": self.builder.to_dict() if self.builder else None,
        }


def read_build_pins(lock: Path) -> tuple[Pin, ...]:
    """The ``name==version`` pins of a ``uv pip compile`` output file, sorted."""
    pins: list[Pin] = []
    for number, line in enumerate(lock.read_text(encoding="utf-8").splitlines(), start=1):
        if not line or line[0] in " \t#-":
            continue
        text = line.rstrip("\\").strip()
        try:
            req = Requirement(text)
        except InvalidRequirement as e:
            raise WheelError(
                f"{lock} line {number}: not a requirement: {e}", hint="regenerate it with `repro-build lock`"
            ) from e
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise WheelError(
                f"{lock} line {number}: {text!r} is not pinned with `==`", hint="regenerate it with `repro-build lock`"
            )
        pins.append(Pin(canonicalize_name(req.name), specs[0].version, str(req.marker) if req.marker else None))
    return tuple(sorted(pins, key=lambda p: (p.name, p.version, p.marker or "")))


def backend_distribution(entry_point: str, pins: tuple[Pin, ...]) -> tuple[str | None, str | None]:
    """The locked distribution that provides the backend module, and its version (or ``(None, None)``).

    The module's import name is matched against the pins (``flit_core.buildapi`` → ``flit-core``,
    ``poetry.core.masonry.api`` → ``poetry-core``); an in-tree backend (``backend-path``) matches none.
    """
    parts = entry_point.split(":", 1)[0].split(".")
    candidates = [canonicalize_name("-".join(parts[:n])) for n in range(len(parts), 0, -1)]
    by_name: dict[str, list[Pin]] = {}
    for p in pins:
        by_name.setdefault(p.name, []).append(p)
    for c in candidates:
        if c in by_name:
            versions = sorted({p.version for p in by_name[c]})
            return c, ",".join(versions)
    return None, None
