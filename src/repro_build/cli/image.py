"""``repro-build image``: assemble each target's image; the digest goes to stdout.

Writes ``build/<target>/oci`` (OCI layout), ``build/<target>/image.tar`` (OCI layout + ``docker load``
archive in one file) and ``build/<target>/manifest.json`` (the build manifest). ``--load`` loads the
archive into the Docker engine; ``--push REF`` uploads exactly the blobs that were built.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from repro_build.cli.output import data, log
from repro_build.config import load_config
from repro_build.errors import ConfigError
from repro_build.image.build import build_image
from repro_build.image.debianbase import debian_base
from repro_build.image.projectwheel import wheel_step
from repro_build.manifest.record import MANIFEST_NAME, image_manifest, write_manifest
from repro_build.oci.progress import progress_for_cli


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "image",
        help="assemble the OCI image of each target (no Docker needed)",
        description="Assemble each target's image from its lock, its base and the project wheel.",
    )
    p.add_argument("--project", type=Path, default=Path(), help="project directory (default: .)")
    p.add_argument("--target", action="append", dest="targets", help="build only this target (repeatable)")
    p.add_argument("--out-dir", type=Path, default=None, help="output directory (default: <project>/build)")
    p.add_argument("--wheel", type=Path, default=None, help="install this project wheel instead of building one")
    p.add_argument("--no-project", action="store_true", help="install only the locked dependencies")
    p.add_argument("--allow-dirty", action="store_true", help="build the wheel from uncommitted changes")
    p.add_argument("--load", action="store_true", help="load the image into the Docker engine")
    p.add_argument("--push", metavar="REF", help="push to a registry, e.g. `host/name:tag` (`{target}` expands)")
    p.add_argument(
        "--mirror",
        metavar="URL",
        help="download the Debian base's packages from this mirror (default: [tool.repro-build.debian] mirror, "
        "else the lock's, else this machine's apt sources); the lock's hashes decide the bytes",
    )
    p.set_defaults(func=run)


def _log_for(target: str, quiet: bool, message: str) -> None:
    log(f"{target}: {message}", quiet=quiet)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.project)
    targets = args.targets or list(config.targets)
    if args.push and len(targets) > 1 and "{target}" not in args.push:
        raise ConfigError(
            f"--push {args.push} would push {len(targets)} targets to one name",
            hint="put `{target}` in the reference, e.g. `--push host/app:{target}`, or pass one `--target`",
        )
    project_wheel = None if (args.wheel or args.no_project) else wheel_step(allow_dirty=args.allow_dirty)
    for name in targets:
        with progress_for_cli(args.quiet) as progress:
            result = build_image(
                config,
                name,
                out_dir=args.out_dir,
                wheel=args.wheel,
                project_wheel=project_wheel,
                debian=functools.partial(debian_base, mirror=args.mirror),
                progress=progress,
                log=functools.partial(_log_for, name, args.quiet),
            )
            image_id = None
            if args.load:
                from repro_build.oci import engine

                image_id = engine.load_image(engine.connect(), result.image, result.repo_tag, result.layout.parent)
                log(f"{name}: loaded {result.repo_tag} (image ID {image_id})", quiet=args.quiet)
            pushed = None
            if args.push:
                from repro_build.oci.transport import parse_location, write_location

                location = parse_location(args.push.replace("{target}", name))
                digest = write_location(location, result.image, result.layout.parent, progress=progress)
                pushed = location.pinned(digest)
        manifest = image_manifest(config, result, image_id=image_id)
        write_manifest(result.layout.parent / MANIFEST_NAME, manifest)
        log(f"{name}: {result.layout.parent}", quiet=args.quiet)
        data(pushed or (result.digest if len(targets) == 1 else f"{name} {result.digest}"))
    return 0
