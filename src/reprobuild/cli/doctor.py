"""``repro-build doctor``: which determinism flags and switches are in effect; exit 1 if the policy is not met.

Inside an image built by repro-build, run ``python -m _repro_build_determinism_doctor`` (same checks, policy
from the image). Here it checks the current interpreter against a target's policy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reprobuild.cli.output import data
from reprobuild.config import load_config
from reprobuild.determinism import hookdoctor
from reprobuild.determinism.doctor import run_doctor


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "doctor",
        help="check determinism flags and runtime switches against a target's policy",
        description="Print which determinism flags are in effect, which runtime switches are on for the "
        "frameworks present, and what is missing. Exit 1 when the policy is not met.",
    )
    p.add_argument("--project", type=Path, default=Path(), help="project directory (default: .)")
    p.add_argument("--target", default=None, help="target whose policy to check (default: the first)")
    p.add_argument("--policy", type=Path, default=None, help="a policy file (`_repro_build_determinism.json`)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--selftest",
        action="store_true",
        help="also run small fixed computations (numpy, torch) twice and compare them bit for bit",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.policy is not None:
        report = hookdoctor.doctor(hookdoctor.load_policy(str(args.policy)), selftest=args.selftest)
    else:
        config = load_config(args.project)
        name = args.target or next(iter(config.targets))
        report = run_doctor(config.target(name).policy, selftest=args.selftest)
    data(json.dumps(report, sort_keys=True, indent=2, default=str) if args.json else hookdoctor.render(report))
    return 0 if report["ok"] else 1
