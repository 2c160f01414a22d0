"""A target's policy completed with the CUDA facts of its locked wheels and its base (at build time)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from reprobuild.config import Config, Target
from reprobuild.determinism.cuda import CudaFacts, cuda_facts
from reprobuild.determinism.doctor import target_policy
from reprobuild.determinism.policy import Policy
from reprobuild.lock import target_lock_path
from reprobuild.lock.reader import read_lock


class _Pin(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...


def base_env(base_config: Mapping[str, Any]) -> list[str]:
    """The ``Env`` of a base image's config (``[]`` when it has none)."""
    runtime = base_config.get("config") or {}
    env = runtime.get("Env") if isinstance(runtime, Mapping) else None
    return [e for e in env or [] if isinstance(e, str)]


def facts_for(pins: Iterable[_Pin], base_config: Mapping[str, Any]) -> CudaFacts | None:
    return cuda_facts(((p.name, p.version) for p in pins), base_env(base_config))


def with_cuda(
    policy: Policy, pins: Iterable[_Pin], base_config: Mapping[str, Any], log: Callable[[str], None]
) -> Policy:
    """``policy`` with ``NVIDIA_REQUIRE_CUDA`` for a `cuda` target; logs a warning for each CUDA disagreement."""
    facts = facts_for(pins, base_config)
    if facts is None:
        return policy
    for warning in facts.warnings():
        log(f"warning: {warning}")
    if policy.cuda and facts.require:
        return dataclasses.replace(policy, require_cuda=facts.require)
    return policy


def locked_cuda_policy(config: Config, target: Target) -> Policy:
    """The target's policy with ``NVIDIA_REQUIRE_CUDA`` from its lock (what ``image`` sets, for ``dockerfile``)."""
    policy = target_policy(config, target)
    path = target_lock_path(config, target.name)
    if not policy.cuda or not path.is_file():
        return policy
    return with_cuda(policy, read_lock(path).values(), {}, lambda s: None)


def lock_warnings(config: Config) -> list[str]:
    """Warnings about the CUDA wheels of each target's lock (mixed majors; the base is checked by ``image``)."""
    out = []
    for name in config.targets:
        path = target_lock_path(config, name)
        if not path.is_file():
            continue
        facts = cuda_facts(((p.name, p.version) for p in read_lock(path).values()), [])
        out += [f"target {name}: {w}" for w in (facts.warnings() if facts else [])]
    return out
