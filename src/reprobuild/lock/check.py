"""``repro-build lock --check``: is every lock current, and if not, what changed?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprobuild.config import Config
from reprobuild.errors import StaleLockError
from reprobuild.lock.inputs import (
    build_inputs,
    build_lock_path,
    file_sha256,
    read_inputs_file,
    target_inputs,
)
from reprobuild.lockdir import BUILD_LOCK, INPUTS_FILE, RELOCK_HINT
from reprobuild.uvbin import uv_version


@dataclass(frozen=True)
class Staleness:
    """One reason a lock file is out of date."""

    lock: str  # e.g. "repro-locks/cpu.txt"
    reason: str

    def __str__(self) -> str:
        return f"{self.lock}: {self.reason}"


def _describe_list(name: str, old: list[Any], new: list[Any]) -> list[str]:
    added = [x for x in new if x not in old]
    removed = [x for x in old if x not in new]
    out = [f"{name}: added {x!r}" for x in added] + [f"{name}: removed {x!r}" for x in removed]
    if not out and old != new:
        out.append(f"{name}: order changed")
    return out


def describe_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Human lines naming each input that differs (lists show added/removed items)."""
    lines: list[str] = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, list) and isinstance(b, list):
            lines.extend(_describe_list(name, a, b))
        elif isinstance(a, dict) and isinstance(b, dict):
            lines.extend(describe_changes(a, b, prefix=f"{name}."))
        else:
            lines.append(f"{name}: {a!r} -> {b!r}")
    return lines


def expected_inputs(
    config: Config, uv: str | None = None, dynamic: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Lock file name -> its current inputs, for the build lock and every target."""
    version = uv or uv_version()
    out = {BUILD_LOCK: build_inputs(config, version, dynamic)}
    for target in config.lock_targets():
        out[target.lock_name] = target_inputs(config, target, version)
    return out


def _stale_before_asking(config: Config) -> bool:
    """Whether any lock is stale on its recorded inputs alone (no backend hook run)."""
    quick = check_locks(config, only=[BUILD_LOCK, *(t.lock_name for t in config.lock_targets())])
    return bool(quick)


def check_locks(config: Config, only: list[str] | None = None) -> list[Staleness]:
    """Every reason the locks are stale (empty when all are current).

    ``only`` limits the check to those lock file names (e.g. ``["build.txt"]``).
    """
    rel = config.locks_dir.relative_to(config.root)
    recorded = read_inputs_file(config)
    if recorded is None:
        return [Staleness(str(rel / INPUTS_FILE), "missing: the project was never locked")]
    # The full check (`lock --check`) asks the backend for its build requirements again; the quick
    # check before a build trusts the recorded answer (uv's hash check refuses an unlocked one anyway).
    # A lock already stale for another reason (a changed Python, backend pin or hand edit) is not asked
    # about: `lock` asks again anyway, and the changed setting may name an interpreter not on this host.
    dynamic: list[str] | None = None
    build_lock = build_lock_path(config)
    if only is None and build_lock.is_file() and not _stale_before_asking(config):
        from reprobuild.lock.buildreqs import dynamic_build_requires

        dynamic = dynamic_build_requires(config, build_lock)
    expected = expected_inputs(config, dynamic=dynamic)
    if only is not None:
        expected = {k: v for k, v in expected.items() if k in only}
    problems: list[Staleness] = []
    locks: dict[str, Any] = recorded["locks"]
    for name, inputs in expected.items():
        path = config.locks_dir / name
        label = str(rel / name)
        if not path.exists():
            problems.append(Staleness(label, "missing"))
            continue
        entry = locks.get(name)
        if entry is None:
            problems.append(Staleness(label, f"not recorded in {rel / INPUTS_FILE}"))
            continue
        old = dict(entry.get("inputs", {}))
        if name == BUILD_LOCK and dynamic is None:
            old.pop("backend-build-requires", None)
        for line in describe_changes(old, inputs):
            problems.append(Staleness(label, line))
        if file_sha256(path) != entry.get("sha256"):
            problems.append(Staleness(label, "edited since it was generated (sha256 differs)"))
    if only is None:
        for name in sorted(set(locks) - set(expected)):
            problems.append(Staleness(str(rel / name), "its target no longer exists in the configuration"))
        from reprobuild.lock.baselock import check_bases

        problems.extend(Staleness(path, reason) for path, reason in check_bases(config))
    return problems


def check_build_lock(config: Config) -> Path:
    """Return ``repro-locks/build.txt`` if it is current; raise :class:`StaleLockError` otherwise."""
    problems = check_locks(config, only=[BUILD_LOCK])
    if problems:
        raise StaleLockError(
            "the build lock is missing or stale:\n" + "\n".join(f"  {p}" for p in problems),
            hint=RELOCK_HINT,
        )
    return build_lock_path(config)
