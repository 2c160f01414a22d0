"""``repro-build lock``: resolve hashed locks; ``--check`` exits 1 naming what changed."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from reprobuild.cli.output import data, log
from reprobuild.cli.results import add_json_flag, emit_json
from reprobuild.config import load_config
from reprobuild.lock import check_locks
from reprobuild.lock.compile import lock_project
from reprobuild.lock.cuda import lock_warnings
from reprobuild.lockdir import LOCKS_DIR, OLD_LOCKS_DIR, RELOCK_HINT


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "lock",
        help=f"resolve {LOCKS_DIR}/<target>.txt, build.txt and repro-build.txt with hashes (uv)",
        description=f"Resolve hashed constraints for every target and the build backend into {LOCKS_DIR}/. Locks "
        f"still in {OLD_LOCKS_DIR}/ (where earlier versions kept them) are moved to {LOCKS_DIR}/ first.",
    )
    p.add_argument("--project", type=Path, default=Path(), help="project directory (default: .)")
    p.add_argument("--check", action="store_true", help="exit 1 if any lock is stale, naming what changed")
    p.add_argument("--target", action="append", dest="targets", help="lock only this target (repeatable)")
    p.add_argument(
        "--build-only", action="store_true", help=f"lock only {LOCKS_DIR}/build.txt (all `repro-build wheel` needs)"
    )
    p.add_argument("-U", "--upgrade", action="store_true", help="ignore existing pins, take the newest versions")
    p.add_argument("-P", "--upgrade-package", action="append", default=[], metavar="NAME", help="upgrade one package")
    p.add_argument(
        "--resolve-bases",
        action="store_true",
        help="pin every tag-only FROM line of Dockerfile.base to its digest from the registry",
    )
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.resolve_bases:
        from reprobuild.lock.bases import resolve_bases

        for line in resolve_bases(args.project.resolve()):
            log(line, quiet=args.quiet)
    start = time.monotonic()
    config = load_config(args.project)
    if args.check:
        problems = check_locks(config)
        if args.json:
            emit_json(
                {
                    "command": "lock",
                    "check": True,
                    "current": not problems,
                    "stale": [str(p) for p in problems],
                    "seconds": round(time.monotonic() - start, 3),
                }
            )
            return 1 if problems else 0
        if problems:
            log("locks are stale:")
            for p in problems:
                log(f"  {p}")
            log(f"\nhint: {RELOCK_HINT}")
            return 1
        data(f"locks are current ({len(config.targets)} target(s) + build)")
        return 0
    result = lock_project(
        config,
        targets=args.targets,
        upgrade=args.upgrade,
        upgrade_packages=tuple(args.upgrade_package),
        build_only=args.build_only,
    )
    for message in result.migration.messages():
        log(f"warning: {message}")
    rel = config.locks_write_dir.relative_to(config.root).as_posix()
    for name, count in sorted(result.counts.items()):
        log(f"locked {rel}/{name}: {count} distribution(s)", quiet=args.quiet)
    for warning in lock_warnings(config):
        log(f"warning: {warning}")
    tool_lock = None
    if not args.targets and not args.build_only:
        from reprobuild.lock.toollock import lock_tool

        tool_lock = lock_tool(config)
        log(tool_lock.message, quiet=args.quiet)
    if args.json:
        locks = {
            f"{rel}/{name}": {"path": str(config.locks_write_dir / name), "pins": count}
            for name, count in result.counts.items()
        }
        if tool_lock is not None and tool_lock.path is not None:
            locks[f"{rel}/{tool_lock.path.name}"] = {"path": str(tool_lock.path), "pins": tool_lock.pins}
        moved = [f"{OLD_LOCKS_DIR}/{name}" for name in result.migration.moved]
        emit_json(
            {
                "command": "lock",
                "check": False,
                "locks": locks,
                "moved": moved,
                "seconds": round(time.monotonic() - start, 3),
            }
        )
    return 0
