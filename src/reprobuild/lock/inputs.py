"""The inputs of each lock, as plain data: what ``lock --check`` compares, field by field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from reprobuild.config import Config, Target
from reprobuild.errors import LockError
from reprobuild.fsutil import human_json_text
from reprobuild.lockdir import BUILD_LOCK, INPUTS_FILE

#: Version of the inputs.json layout; bump when its meaning changes.
INPUTS_SCHEMA = 1


def build_lock_path(config: Config) -> Path:
    """``repro-locks/build.txt``: the hashed build constraints for ``uv build``."""
    return config.locks_dir / BUILD_LOCK


def target_lock_path(config: Config, target: str) -> Path:
    """``repro-locks/<target>.txt``."""
    return config.locks_dir / f"{target}.txt"


def _group_closure(config: Config, groups: tuple[str, ...]) -> dict[str, list[str]]:
    """The selected dependency groups plus every group they include (PEP 735), as written."""
    out: dict[str, list[str]] = {}
    pending = list(groups)
    while pending:
        name = pending.pop()
        if name in out:
            continue
        entries = list(config.project.dependency_groups[name])
        out[name] = entries
        pending.extend(e.split(":", 1)[1] for e in entries if e.startswith("include-group:"))
    return out


def target_inputs(config: Config, target: Target, uv_version: str) -> dict[str, Any]:
    """Everything that changes ``repro-locks/<target>.txt`` when it changes."""
    return {
        "base": target.base.pin,
        "binary-only": target.binary_only,
        "dependencies": sorted(config.project.dependencies),
        "dependency-groups": _group_closure(config, target.groups),
        "exclude-newer": config.exclude_newer,
        "extras": list(target.extras),
        "groups": list(target.groups),
        "optional-dependencies": {e: sorted(config.project.optional_dependencies[e]) for e in target.extras},
        "python": target.python,
        "python-platform": target.python_platform,
        "requires-python": config.project.requires_python,
        "uv": uv_version,
    }


def build_inputs(config: Config, uv_version: str, dynamic: list[str] | None = None) -> dict[str, Any]:
    """Everything that changes ``repro-locks/build.txt`` when it changes; ``dynamic``: what the backend's
    ``get_requires_for_build_*`` hooks add (left out when not asked, see :mod:`reprobuild.lock.buildreqs`)."""
    inputs: dict[str, Any] = {
        "build-backend": config.project.build_backend,
        "build-requires": sorted(config.project.build_requires),
        "exclude-newer": config.exclude_newer,
        "resolution": "universal",
        "uv": uv_version,
    }
    if dynamic is not None:
        inputs["backend-build-requires"] = sorted(dynamic)
    return inputs


def checksum(inputs: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``inputs``."""
    data = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def read_inputs_file(config: Config) -> dict[str, Any] | None:
    """The recorded ``repro-locks/inputs.json``, or None if there is none."""
    path = config.locks_dir / INPUTS_FILE
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LockError(f"{path} is not valid JSON: {e}", hint="regenerate it with `repro-build lock`") from e
    if data.get("schema") != INPUTS_SCHEMA or not isinstance(data.get("locks"), dict):
        raise LockError(
            f"{path} has an unknown layout (schema {data.get('schema')!r})",
            hint="regenerate it with `repro-build lock`",
        )
    return data


def recorded_defaults(config: Config) -> dict[str, str]:
    """The values used for the settings the project leaves unset, as ``inputs.json`` records them
    (``defaults``): later runs on any host read them back (:mod:`reprobuild.lockdefaults`)."""
    return {name: entry["value"] for name, entry in sorted(config.defaults.items())}


def render_inputs_file(locks: dict[str, dict[str, Any]], defaults: dict[str, str] | None = None) -> str:
    """The text of ``repro-locks/inputs.json`` for ``{lock file name: {"inputs", "checksum", "sha256"}}``."""
    data: dict[str, Any] = {
        "generated-by": "repro-build lock; do not edit. `repro-build lock --check` compares it with the project.",
        "locks": locks,
        "schema": INPUTS_SCHEMA,
    }
    if defaults:
        data["defaults"] = defaults
    return human_json_text(data)
