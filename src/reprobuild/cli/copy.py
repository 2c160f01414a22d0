"""``repro-build copy SRC DST``: move an image between a layout, an archive, the engine and a registry.

Digests are preserved where the sink can keep them (layout, archive, registry). Prints the destination
pinned by digest on stdout; progress goes to stderr on a TTY unless ``--quiet``.

The image's attachments (SBOMs, provenance, signatures: its referrers, :mod:`reprobuild.attest.carry`)
travel with it between layouts and registries, unless ``--no-attachments``; all of them are read and
verified before anything is written. An archive or the engine cannot keep them: a warning says how many
stay behind.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reprobuild.cli.output import data, log
from reprobuild.cli.progress import progress_for_cli
from reprobuild.cli.results import add_json_flag, emit_json
from reprobuild.oci.location import FORMS, Location, parse_location
from reprobuild.oci.transport import read_location, write_location
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
    p.add_argument(
        "--no-attachments",
        action="store_true",
        help="copy the image only, not what is attached to it (SBOMs, provenance, signatures); by default they "
        "are copied between layouts and registries",
    )
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


def attachments_left_behind(dst: Location, count: int) -> str | None:
    """The warning for a destination that cannot keep the ``count`` attachments the source has."""
    from reprobuild.attest.carry import no_attachments_reason

    if count == 0:
        return None
    return (
        f"{dst}: {no_attachments_reason(dst)}, so the image's {count} attachments (SBOMs, provenance, signatures) "
        "were not copied; copy to an oci-layout or a registry to keep them"
    )


def run(args: argparse.Namespace) -> int:
    from reprobuild.attest.carry import (
        Attachment,
        count_attachments,
        keeps_attachments,
        no_attachments_reason,
        read_attachments,
        subjects_of,
        write_attachments,
    )

    quiet = bool(getattr(args, "quiet", False))
    src, dst = parse_location(args.src), parse_location(args.dst)
    platform = Platform.parse(args.platform) if args.platform else None
    carry = not getattr(args, "no_attachments", False) and keeps_attachments(src)
    log(f"copying {src} -> {dst}", quiet=quiet)
    start = time.monotonic()
    warnings: list[str] = []
    attachments: list[Attachment] = []
    if getattr(args, "no_attachments", False):
        found = written = "not copied: --no-attachments"
    else:
        found, written = ("none" if keeps_attachments(src) else no_attachments_reason(src)), "none"
    with progress_for_cli(quiet) as progress, tempfile.TemporaryDirectory(prefix="repro-build-copy-") as tmp:
        staging = Path(tmp)
        art = read_location(src, staging / "src", platform=platform, progress=progress)
        subjects = subjects_of(art)
        if carry and keeps_attachments(dst):
            # Every attachment is read and verified before the image is written: a bad one stops the copy
            # with nothing written.
            attachments, found = read_attachments(src, subjects, staging / "attachments", progress=progress)
        elif carry:
            found = f"not copied: {dst} keeps none"
            warning = attachments_left_behind(dst, count_attachments(src, subjects))
            if warning is not None:
                warnings.append(warning)
        image_digest = write_location(dst, art, staging / "dst", progress=progress)
        if attachments:
            written = write_attachments(dst, attachments, progress=progress)
    pinned = dst.pinned(image_digest)
    digest = str(image_digest)
    if attachments:
        log(f"{len(attachments)} attachments copied: read from the {found}, written to the {written}", quiet=quiet)
    if src.kind == "docker-daemon" and dst.kind != "docker-daemon":
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
                "attachments": {
                    "copied": [a.to_dict() for a in attachments],
                    "found": found,
                    "written": written,
                },
            }
        )
    else:
        data(pinned)
    return 0
