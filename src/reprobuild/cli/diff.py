"""``repro-build diff A B``: the semantic diff of two images, archives, layouts or wheels (exit 1 if different)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from reprobuild.cli.output import data
from reprobuild.cli.progress import progress_for_cli
from reprobuild.oci.location import FORMS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "diff",
        help="explain how two images, archives, layouts or wheels differ",
        description=f"Semantic diff naming the first divergent artifact and the hazard class. Images: {FORMS}.",
    )
    p.add_argument("a", metavar="A", help="a .whl, or an image location (above)")
    p.add_argument("b", metavar="B")
    p.add_argument("--platform", metavar="OS/ARCH", default=None, help="pick one platform from an index")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.a.endswith(".whl") and args.b.endswith(".whl"):
        from reprobuild.wheel.diffreport import diff_wheels

        wheel_diffs = diff_wheels(Path(args.a).read_bytes(), Path(args.b).read_bytes())
        lines = [str(d) for d in wheel_diffs]
        data(
            json.dumps({"identical": not lines, "differences": lines}, indent=2)
            if args.json
            else "\n".join(lines) or "identical"
        )
        return 1 if lines else 0
    from reprobuild.manifest.semdiff import diff_images
    from reprobuild.oci.image import Image
    from reprobuild.oci.location import parse_location
    from reprobuild.oci.transport import read_location
    from reprobuild.oci.values import Platform

    platform = Platform.parse(args.platform) if args.platform else None
    with (
        tempfile.TemporaryDirectory() as ta,
        tempfile.TemporaryDirectory() as tb,
        progress_for_cli(args.quiet) as progress,
    ):
        a = read_location(parse_location(args.a), Path(ta), platform=platform, progress=progress)
        b = read_location(parse_location(args.b), Path(tb), platform=platform, progress=progress)
        if not isinstance(a, Image) or not isinstance(b, Image):
            from reprobuild.errors import ConfigError

            raise ConfigError("diff compares single images", hint="pass `--platform os/arch` for an index")
        from reprobuild.errors import OCIError
        from reprobuild.oci.validate import image_problems

        for ref, image in ((args.a, a), (args.b, b)):
            # Blobs are re-hashed before they are unpacked: a corrupt one is an error, not a difference.
            problems = image_problems(image, check_diff_ids=False)
            if problems:
                raise OCIError(f"{ref}: {problems[0]}", hint="the image is corrupt; copy it again from its source")
        history = [str(h.get("created_by", "")) for h in a.config.get("history") or [] if not h.get("empty_layer")]
        names = [h.removeprefix("repro-build: ") for h in history]
        # The base's layers are the ones below the first layer `repro-build image` wrote.
        bases = next((i for i, h in enumerate(history) if h.startswith("repro-build: ")), 0)
        divergences = diff_images(a, b, layer_names=names, base_layers=bases)
    if args.json:
        data(
            json.dumps(
                {"identical": not divergences, "divergences": [d.to_dict() for d in divergences]},
                indent=2,
                sort_keys=True,
            )
        )
    else:
        data("\n".join(str(d) for d in divergences) if divergences else f"identical: {a.digest}")
    return 1 if divergences else 0
