"""The embedded Debian bases of a project's targets, locked and checked with the Python locks.

``repro-build lock`` writes ``repro-locks/base-<suite>-<arch>.json`` for every ``debian:SUITE`` target (the
Debian base issue's lock: Release sha256 and every ``.deb`` by sha256). ``lock --check`` compares the
lock's recorded inputs with the configuration, offline, as it does for the Python locks: a newer
Release on the mirror is not a change of the project (``repro-build base lock --check`` asks the
mirror, for that).
"""

from __future__ import annotations

from pathlib import Path

from reprobuild.base.debian.fetch import DebCache
from reprobuild.base.debian.lock import (
    BaseInputs,
    check_inputs,
    default_lock_path,
    make_lock,
    packages_with_defaults,
    write_lock,
)
from reprobuild.cache import prepare_cache_root
from reprobuild.config import Config
from reprobuild.errors import ReproBuildError


def debian_bases(config: Config) -> list[tuple[str, str]]:
    """``(suite, arch)`` of every Debian base the targets use, sorted."""
    return sorted({(t.base.suite, t.arch) for t in config.lock_targets() if t.base.kind == "debian" and t.base.suite})


def base_inputs(config: Config, suite: str, arch: str) -> BaseInputs:
    """The inputs of a target's Debian base; a mirror of None means this machine's apt sources."""
    return BaseInputs(suite, arch, config.debian.mirror, packages_with_defaults(config.debian.packages))


def lock_bases(config: Config) -> list[Path]:
    """(Re)lock every Debian base; returns the lock paths written."""
    written = []
    for suite, arch in debian_bases(config):
        path = default_lock_path(config.root, suite, arch)
        lock = make_lock(base_inputs(config, suite, arch), DebCache(prepare_cache_root()))
        write_lock(path, lock)
        written.append(path)
    return written


def check_bases(config: Config) -> list[tuple[str, str]]:
    """``(lock path, reason)`` for every Debian base lock that is missing or was made from other inputs."""
    problems: list[tuple[str, str]] = []
    for suite, arch in debian_bases(config):
        path = default_lock_path(config.root, suite, arch)
        rel = path.relative_to(config.root).as_posix()
        if not path.is_file():
            problems.append((rel, "missing"))
            continue
        try:
            check_inputs(path, base_inputs(config, suite, arch))
        except ReproBuildError as e:
            lines = [line.strip() for line in e.message.splitlines()[1:] if line.strip()] or [e.message]
            problems.extend((rel, line) for line in lines)
    return problems
