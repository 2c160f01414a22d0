"""A target's policy completed with the CUDA facts of its wheels and its base (at build time; from its lock
:mod:`reprobuild.lock.cuda`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from reprobuild.determinism.cuda import CudaFacts, cuda_facts
from reprobuild.determinism.policy import Policy


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
