"""``repro-build verify MANIFEST``: rebuild from the manifest and compare (exit 0 identical, 1 different).

With ``--image REF`` it is the pre-deploy gate instead: is the image at REF exactly the one the
manifest describes? Exit codes: 0 match, 1 mismatch, 2 error (unreadable manifest, unreachable
registry, missing image).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reprobuild.cli.output import data, log


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="rebuild from a build manifest and compare, or gate a deployed image (--image)",
        description="Rebuild the image a manifest describes from its inputs alone and compare every digest "
        "(exit 0 identical, 1 different, 2 error); with --image REF, check a deployed image instead.",
    )
    p.add_argument("manifest", type=Path, metavar="MANIFEST", help="build/<target>/manifest.json")
    p.add_argument("--image", metavar="REF", help="registry ref, docker-daemon:NAME, oci-archive:PATH, oci-layout:PATH")
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


def run(args: argparse.Namespace) -> int:
    from reprobuild.manifest.schema import read_manifest

    if args.image:
        from reprobuild.manifest.gate import check_image

        gate = check_image(read_manifest(args.manifest), args.image)
        if args.json:
            data(json.dumps(gate.to_dict(), sort_keys=True, indent=2))
        elif gate.match:
            data(f"match: {args.image} is {gate.expected.manifest_digest or gate.expected.config_digest}")
        else:
            data(f"MISMATCH: {args.image}")
            for problem in gate.problems:
                log(f"  {problem}")
        return 0 if gate.match else 1
    from reprobuild.manifest.verify import verify_manifest

    result = verify_manifest(
        args.manifest,
        repo=args.repo,
        offline=args.offline,
        mirror=args.mirror,
        report=args.report,
        log=lambda s: log(s, quiet=args.quiet),
    )
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
