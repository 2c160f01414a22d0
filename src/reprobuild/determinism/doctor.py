"""``repro-build doctor`` on the host: the in-image doctor, run against a target's policy."""

from __future__ import annotations

from typing import Any

from reprobuild.config import Config, Target
from reprobuild.determinism import hookdoctor
from reprobuild.determinism.policy import Policy, effective_env


def target_policy(config: Config, target: Target) -> Policy:
    """The policy an image of ``target`` carries (before the CUDA facts of its wheels are known)."""
    user_env, unset = effective_env([(config.env, config.env_unset), (target.env, target.env_unset)])
    return Policy(
        target.flags,
        cuda=target.accelerator == "cuda",
        seed=target.seed,
        switches=target.switches,
        user_env=user_env,
        unset=unset,
    )


def run_doctor(policy: Policy, environ: dict[str, str] | None = None, *, selftest: bool = False) -> dict[str, Any]:
    """Check this interpreter and ``environ`` against ``policy`` (same code as in the image)."""
    return hookdoctor.doctor({**policy.to_dict(), "path": "the project configuration"}, environ, selftest=selftest)
