"""``repro-build wheel``: deterministic sdist + wheel through uv; ``--check`` builds twice and compares."""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path
from typing import Any

from reprobuild.cli.output import data, log
from reprobuild.cli.results import add_json_flag, emit_json
from reprobuild.config import load_config
from reprobuild.wheel.outputs import Artifact


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "wheel",
        help="build a bit-for-bit reproducible sdist and wheel (any PEP 517 backend, via uv)",
        description=(
            "Build the sdist, then the wheel from it, with `uv build` pinned by repro-locks/build.txt, in a normalised "
            "environment, and canonicalise both archives. Prints each artifact's path and sha256."
        ),
    )
    p.add_argument("--project", type=Path, default=Path(), help="project directory (default: .)")
    p.add_argument("--out-dir", type=Path, help="where the artifacts and the build record go (default: <project>/dist)")
    p.add_argument(
        "--allow-dirty", action="store_true", help="build uncommitted changes too (recorded as `dirty` in the record)"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="build twice under different path/umask/TZ/locale/file order and compare; exit 1 if they differ",
    )
    p.add_argument("--report", type=Path, metavar="DIR", help="with --check: keep both builds and the report in DIR")
    container = p.add_mutually_exclusive_group()
    container.add_argument(
        "--in-container",
        dest="in_container",
        action="store_true",
        default=None,
        help="build inside the builder image (default when one is configured)",
    )
    container.add_argument("--no-container", dest="in_container", action="store_false", help="build on this host")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--sdist-only", action="store_true", help="build only the sdist")
    only.add_argument("--wheel-only", action="store_true", help="build only the wheel, straight from the source")
    add_json_flag(p)
    p.set_defaults(func=run)


def _artifact(a: Artifact, directory: Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": a.kind, "filename": a.filename, "sha256": a.sha256, "size": a.size}
    if directory is not None:
        out["path"] = str(directory / a.filename)
    return out


def run(args: argparse.Namespace) -> int:
    config = load_config(args.project)
    say = partial(log, quiet=args.quiet)
    start = time.monotonic()
    sdist, wheel = not args.wheel_only, not args.sdist_only
    if args.report is not None and not args.check:
        say("note: --report only applies with --check; ignoring it")
    if args.check:
        from reprobuild.wheel.check import check_wheel

        result = check_wheel(
            config,
            allow_dirty=args.allow_dirty,
            sdist=sdist,
            wheel=wheel,
            in_container=args.in_container,
            report_dir=args.report.resolve() if args.report else None,
            log=say,
        )
        if args.json:
            emit_json(
                {
                    "command": "wheel",
                    "check": True,
                    "identical": result.identical,
                    "comparisons": [
                        {"kind": c.kind, "identical": c.identical, "a": _artifact(c.a, None), "b": _artifact(c.b, None)}
                        for c in result.comparisons
                    ],
                    "differences": [] if result.identical else list(result.report_lines()),
                    "seconds": round(time.monotonic() - start, 3),
                }
            )
        else:
            for c in result.comparisons:
                data(f"{c.a.filename} a {c.a.sha256}")
                data(f"{c.b.filename} b {c.b.sha256}")
        if result.identical:
            say("reproducible: both builds are bit-for-bit identical")
            return 0
        if not args.json:
            for line in result.report_lines():
                data(line)
        raise result.error()
    from reprobuild.wheel.build import build_wheel

    record = build_wheel(
        config,
        out_dir=args.out_dir,
        allow_dirty=args.allow_dirty,
        in_container=args.in_container,
        sdist=sdist,
        wheel=wheel,
        log=say,
    )
    dest = (args.out_dir or config.root / "dist").resolve()
    if args.json:
        emit_json(
            {
                "command": "wheel",
                "check": False,
                "artifacts": [_artifact(a, dest) for a in record.artifacts],
                "record": str(dest / record.record_filename),
                "seconds": round(time.monotonic() - start, 3),
            }
        )
    else:
        for a in record.artifacts:
            data(f"{dest / a.filename} {a.sha256}")
    say(f"build record: {dest / record.record_filename}")
    return 0
