"""``repro-build dockerfile``: print a target's equivalent Dockerfile, or lay out its build context."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from reprobuild.cli.output import data, log
from reprobuild.config import load_config
from reprobuild.dockerfile import is_cache, prepare_context, render_dockerfile, wheels_from_cache, wheels_from_dir
from reprobuild.errors import UsageError

_DESCRIPTION = """\
Print the equivalent Dockerfile of a target on stdout: the same base, the wheels of repro-locks/<target>.txt
installed with `uv pip install --require-hashes --no-deps`, the project wheel, the determinism hook, env
and entrypoint. It is for reading or owning, and the peer in benchmarks; `docker build` of it is not
reproducible (repro-build's own `image` is).

With --context DIR, lay out a complete build context in DIR (a new directory) instead:
  DIR/Dockerfile, DIR/tools/uv (this host's uv), DIR/locks/<target>.txt,
  DIR/wheels/ (the locked wheels, taken from --wheels-dir and checked against the lock's hashes),
  DIR/project/ (--project-wheel, pinned by sha256), DIR/app/ (the determinism hook files).
Then: DOCKER_BUILDKIT=1 docker build --network none -t IMAGE DIR

The base is the target's registry base by digest. A `debian:SUITE`, `oci-layout:`, `docker-archive:` or
`docker-daemon:` base has no reference a Dockerfile can pull: have it in the engine (`docker load`; a
`docker-daemon:` base is there already) and pass its name or ID with --base-image."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dockerfile",
        help="print a target's equivalent Dockerfile (or lay out its build context)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--project", type=Path, default=Path(), help="project directory (default: .)")
    p.add_argument("--target", default=None, help="the target (default: the only one; required if several)")
    p.add_argument("--base-image", metavar="REF", help="the base as loaded in the engine (FROM REF)")
    p.add_argument("--context", type=Path, metavar="DIR", help="lay out the build context in DIR (must not exist)")
    p.add_argument(
        "--wheels-dir",
        type=Path,
        metavar="DIR",
        help="with --context: where the locked wheel files are (searched recursively, e.g. the wheel cache)",
    )
    p.add_argument("--project-wheel", type=Path, metavar="WHEEL", help="with --context: the project's wheel")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.project)
    target = args.target
    if target is None:
        if len(config.targets) != 1:
            raise UsageError(
                "this project has several targets", hint=f"pick one: --target {{{','.join(config.targets)}}}"
            )
        target = next(iter(config.targets))
    if args.context is None:
        if args.wheels_dir is not None or args.project_wheel is not None:
            raise UsageError(
                "--wheels-dir and --project-wheel only make sense with --context", hint="add `--context DIR`"
            )
        data(render_dockerfile(config, target, base_image=args.base_image))
        return 0
    if args.wheels_dir is None or args.project_wheel is None:
        raise UsageError(
            "--context needs --wheels-dir and --project-wheel",
            hint="build the project wheel with `repro-build wheel`; for the locked wheels, `--wheels-dir` may be "
            "repro-build's cache directory (`$REPRO_BUILD_CACHE`, else `~/.cache/repro-build`)",
        )
    with tempfile.TemporaryDirectory(prefix="repro-build-wheels-") as staging:
        if is_cache(args.wheels_dir):
            wheels = wheels_from_cache(config, target, args.wheels_dir, Path(staging))
        else:
            wheels = wheels_from_dir(config, target, args.wheels_dir)
        files = prepare_context(config, target, wheels, args.project_wheel, args.context, base_image=args.base_image)
    log(f"wrote the build context of target {target!r} ({len(files)} files) in {args.context}", quiet=args.quiet)
    data(str(args.context))
    return 0
