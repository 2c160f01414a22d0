"""``repro-build verify MANIFEST``: rebuild from the manifest and compare (exit 0 identical, 1 different).

With ``--image REF`` it is the pre-deploy gate instead: is the image at REF exactly the one the
manifest describes? MANIFEST may then be left out: it is taken from the SLSA provenance attached to
the image (registry or OCI layout; :func:`reprobuild.attest.attach.manifest_from_image`). Exit
codes: 0 match, 1 mismatch, 2 error (unreadable manifest, unreachable registry, missing image).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from reprobuild.cli.output import data, log
from reprobuild.cli.progress import progress_for_cli
from reprobuild.errors import ConfigError
from reprobuild.oci.location import FORMS

if TYPE_CHECKING:
    from reprobuild.manifest.schema import Manifest


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="rebuild from a build manifest and compare, or gate a deployed image (--image)",
        description="Rebuild the image a manifest describes from its inputs alone and compare every digest "
        "(exit 0 identical, 1 different, 2 error); with --image REF, check a deployed image instead.",
    )
    p.add_argument(
        "manifest",
        type=Path,
        metavar="MANIFEST",
        nargs="?",
        help="build/<target>/manifest.json; with --image it may be left out: the build manifest is then "
        "taken from the provenance attached to the image",
    )
    p.add_argument("--image", metavar="REF", help=f"the deployed image: {FORMS}")
    p.add_argument(
        "--save-manifest",
        type=Path,
        metavar="PATH",
        help="with --image and no MANIFEST: write the build manifest found in the provenance here",
    )
    p.add_argument(
        "--repo",
        default=None,
        metavar="PATH|URL",
        help="git repository holding the commit: a local path, or a URL to clone (default: the repository "
        "containing MANIFEST, else the current directory's, else a clone of the remote the manifest records)",
    )
    p.add_argument("--offline", action="store_true", help="use only the cache; say what is missing")
    p.add_argument(
        "--mirror",
        metavar="URL",
        help="download the Debian base's packages from this mirror (the lock's hashes decide the bytes)",
    )
    p.add_argument("--report", type=Path, default=None, metavar="DIR", help="write both sides here for diffoscope")
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.set_defaults(func=run)


def _manifest_from_image(image: str, save: Path | None, *, quiet: bool) -> Manifest:
    """The build manifest carried by the provenance attached to ``image``, read and checked like a file
    (errors name ``save``, else the provenance of ``image``)."""
    from reprobuild.attest.attach import manifest_from_image
    from reprobuild.fsutil import atomic_write_bytes
    from reprobuild.manifest.schema import parse_manifest

    data, where = manifest_from_image(image)
    log(f"build manifest: from {where}", quiet=quiet)
    if save is not None:
        atomic_write_bytes(save, data)
    return parse_manifest(data, save or f"the provenance of {image}")


def run(args: argparse.Namespace) -> int:
    from reprobuild.manifest.indexschema import IndexManifest, read_any_manifest

    if args.manifest is None and not args.image:
        raise ConfigError(
            "verify needs a build manifest, or `--image REF`",
            hint="`repro-build verify build/<target>/manifest.json`, or `repro-build verify --image REF`",
        )
    if args.save_manifest is not None and (args.manifest is not None or not args.image):
        raise ConfigError("--save-manifest goes with `--image REF` and no MANIFEST", hint="drop MANIFEST or the option")
    if args.image:
        from reprobuild.manifest.gate import check_image
        from reprobuild.manifest.gateindex import check_index

        if args.manifest is None:
            manifest: Manifest | IndexManifest = _manifest_from_image(args.image, args.save_manifest, quiet=args.quiet)
        else:
            manifest = read_any_manifest(args.manifest)
        with progress_for_cli(args.quiet) as progress:
            if isinstance(manifest, IndexManifest):
                gate = check_index(manifest, args.image, progress=progress)
            else:
                gate = check_image(manifest, args.image, progress=progress)
        if args.json:
            data(json.dumps(gate.to_dict(), sort_keys=True, indent=2))
        elif gate.match:
            expected = gate.expected
            data(
                f"match: {args.image} is {expected.index_digest or expected.manifest_digest or expected.config_digest}"
            )
            if gate.found.note:
                log(f"note: {gate.found.note}", quiet=args.quiet)
        else:
            data(f"MISMATCH: {args.image}")
            for problem in gate.problems:
                log(f"  {problem}")
        return 0 if gate.match else 1
    from reprobuild.manifest.verify import RebuildOptions
    from reprobuild.manifest.verifyindex import verify_any

    with progress_for_cli(args.quiet) as progress:
        options = RebuildOptions(
            repo=args.repo,
            offline=args.offline,
            mirror=args.mirror,
            report=args.report,
            log=lambda s: log(s, quiet=args.quiet),
            progress=progress,
        )
        result = verify_any(args.manifest, options)
    if args.json:
        data(json.dumps(result.to_dict(), sort_keys=True, indent=2))
    elif result.identical:
        data(f"verified: {result.compared} artifacts identical")
    else:
        first = result.divergences[0]
        data(
            f"DIFFERENT: {len(result.divergences)} of {result.compared} artifacts differ; first: {first.artifact} "
            f"({first.hazard})"
        )
        for d in result.divergences:
            log(str(d))
        if args.report:
            log(
                f"\nboth sides are in {args.report}; compare with `diffoscope {args.report}/original "
                f"{args.report}/rebuilt`"
            )
    return 0 if result.identical else 1
