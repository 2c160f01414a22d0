"""``repro-build doctor`` on the host: the in-image doctor, run against a target's policy (``Target.policy``)."""

from __future__ import annotations

from typing import Any

from reprobuild.determinism import hookdoctor
from reprobuild.determinism.policy import Policy


def run_doctor(policy: Policy, environ: dict[str, str] | None = None, *, selftest: bool = False) -> dict[str, Any]:
    """Check this interpreter and ``environ`` against ``policy`` (same code as in the image)."""
    return hookdoctor.doctor({**policy.to_dict(), "path": "the project configuration"}, environ, selftest=selftest)
