"""``repro-build init``: add repro-build to an existing PEP 621 project (config, base pins, nox, CI)."""

from __future__ import annotations

import argparse
from pathlib import Path

from reprobuild.cli.output import data, log
from reprobuild.init import init_project

#: What to do after `init`: builds are made from commits, so the new files and the locks are committed first.
NEXT_STEPS = (
    "next: `repro-build lock`, then commit (builds are made from commits: "
    '`git add -A && git commit -m "Add repro-build"`), then `nox -s build`'
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init",
        help="add [tool.repro-build], Dockerfile.base, a nox build session and a CI workflow to a project",
        description="Add `[tool.repro-build]` to pyproject.toml (keeping every other byte), and write "
        "Dockerfile.base, noxfile.py (a `build` session) and .github/workflows/repro-build.yml. Never "
        "overwrites anything without --force: if something exists, nothing is written. An existing "
        "noxfile.py is left alone and the session to add is printed. The paths written go to stdout.",
    )
    p.add_argument("--project", type=Path, default=Path(), help="project directory (default: .)")
    p.add_argument("--force", action="store_true", help="overwrite existing files and the existing table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = init_project(args.project, force=args.force)
    verbs = {"create": "created", "overwrite": "overwrote", "update": "updated"}
    for item in result.written:
        log(f"{verbs[item.action]} {item.path}", quiet=args.quiet)
    for note in result.advice:
        log(f"\nnote: {note}", quiet=args.quiet)
    if result.written:
        log(f"\n{NEXT_STEPS}", quiet=args.quiet)
    for item in result.written:
        data(item.path)
    return 0
