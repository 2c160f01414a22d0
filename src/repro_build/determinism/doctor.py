"""``repro-build doctor`` on the host: the in-image doctor, run against a target's policy."""

from __future__ import annotations

from typing import Any

from repro_build.config import Target
from repro_build.determinism import hookdoctor
from repro_build.determinism.policy import Policy


def target_policy(target: Target) -> Policy:
    """The policy an image of ``target`` carries."""
    return Policy(target.flags, cuda=target.accelerator == "cuda")


def run_doctor(policy: Policy, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Check this interpreter and ``environ`` against ``policy`` (same code as in the image)."""
    return hookdoctor.doctor({**policy.to_dict(), "path": "the project configuration"}, environ)
