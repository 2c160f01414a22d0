"""``repro-build copy SRC DST``: move an image between a layout, an archive, the engine and a registry.

Digests are preserved where the sink can keep them (layout, archive, registry). Prints the destination
pinned by digest on stdout; progress goes to stderr on a TTY unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from reprobuild.cli.output import data, log
from reprobuild.cli.results import add_json_flag, emit_json
from reprobuild.oci.location import FORMS, parse_location
from reprobuild.oci.progress import progress_for_cli
from reprobuild.oci.transport import copy_image
from reprobuild.oci.values import Platform


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "copy",
        help="copy an image between layouts, archives, the engine and registries, keeping digests",
        description=f"Copy an image. Locations: {FORMS}. Prints DST pinned by digest.",
    )
    p.add_argument("src", metavar="SRC", help="where to read the image")
    p.add_argument("dst", metavar="DST", help="where to write it")
    p.add_argument("--platform", metavar="OS/ARCH", help="pick one platform's image from an index")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    quiet = bool(getattr(args, "quiet", False))
    src, dst = parse_location(args.src), parse_location(args.dst)
    platform = Platform.parse(args.platform) if args.platform else None
    log(f"copying {src} -> {dst}", quiet=quiet)
    start = time.monotonic()
    with progress_for_cli(quiet) as progress:
        pinned = copy_image(src, dst, platform=platform, progress=progress)
    if getattr(args, "json", False):
        emit_json(
            {
                "command": "copy",
                "source": str(src),
                "destination": str(dst),
                "pinned": pinned,
                "digest": pinned.rsplit("@", 1)[-1] if "@sha256:" in pinned else None,
                "seconds": round(time.monotonic() - start, 3),
            }
        )
    else:
        data(pinned)
    return 0
