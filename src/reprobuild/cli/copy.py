"""``repro-build copy SRC DST``: move an image between a layout, an archive, the engine and a registry.

Digests are preserved where the sink can keep them (layout, archive, registry). Prints the destination
pinned by digest on stdout; progress goes to stderr on a TTY unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from reprobuild.cli.output import data, log
from reprobuild.cli.progress import progress_for_cli
from reprobuild.cli.results import add_json_flag, emit_json
from reprobuild.oci.location import FORMS, Location, parse_location
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


def digest_change_warning(src: Location, dst: Location, digest: str, image_id: str, known: Sequence[str]) -> str | None:
    """The warning for a copy out of the engine that gave the image a manifest digest it never had.

    An engine keeps layers uncompressed and has no manifest of its own (:mod:`reprobuild.oci.engine`):
    ``docker save`` gives the layers back uncompressed, so any destination that keeps manifests gets a
    new manifest digest; only the image ID (the config digest) and the layers' content (diff_ids) are
    the same. ``known`` are the manifest digests the engine recorded for the image (``RepoDigests``);
    None when ``digest`` is one of them, or when the destination is an engine too.
    """
    if src.kind != "docker-daemon" or dst.kind == "docker-daemon" or digest in known:
        return None
    before = (
        f"the manifest digest the engine recorded for it ({', '.join(known)})"
        if known
        else f"the digest it was built or pulled with (the engine records only its image ID {image_id})"
    )
    return (
        f"{dst} got manifest digest {digest}, not {before}: the engine gives layers back uncompressed "
        f"(`docker save`), so they were written uncompressed and the manifest is new; the image ID {image_id} "
        "and the layers' content are unchanged. Copy from the build's oci-layout, its archive or a registry to "
        "keep the digest a build manifest records"
    )


def run(args: argparse.Namespace) -> int:
    quiet = bool(getattr(args, "quiet", False))
    src, dst = parse_location(args.src), parse_location(args.dst)
    platform = Platform.parse(args.platform) if args.platform else None
    log(f"copying {src} -> {dst}", quiet=quiet)
    start = time.monotonic()
    with progress_for_cli(quiet) as progress:
        pinned = copy_image(src, dst, platform=platform, progress=progress)
    digest = pinned.rsplit("@", 1)[-1] if "@sha256:" in pinned else None
    warnings: list[str] = []
    if src.kind == "docker-daemon" and dst.kind != "docker-daemon" and digest is not None:
        from reprobuild.oci import engine

        assert src.name is not None
        image_id, known = engine.image_digests(engine.connect(), src.name)
        warning = digest_change_warning(src, dst, digest, image_id, known)
        if warning is not None:
            warnings.append(warning)
    for warning in warnings:
        log(f"warning: {warning}", quiet=quiet)
    if getattr(args, "json", False):
        emit_json(
            {
                "command": "copy",
                "source": str(src),
                "destination": str(dst),
                "pinned": pinned,
                "digest": digest,
                "seconds": round(time.monotonic() - start, 3),
                "warnings": warnings,
            }
        )
    else:
        data(pinned)
    return 0
