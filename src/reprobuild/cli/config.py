"""``repro-build config``: print the effective configuration (defaults filled in) as JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from reprobuild.cli.output import data
from reprobuild.config import load_config
from reprobuild.fsutil import human_json_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "config",
        help="print the effective configuration",
        description="Print the effective configuration, with every default filled in, as JSON.",
    )
    p.add_argument("--project", type=Path, default=Path(), help="project directory (default: .)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.project)
    data(human_json_text(config.to_dict()))
    return 0
