"""``repro-build inspect REF``: digests, layers with what they hold, env flags (``--json`` for scripts)."""

from __future__ import annotations

import argparse
import json

from reprobuild.cli.output import data
from reprobuild.oci.location import FORMS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "inspect",
        help="show an image's digests, layers and env",
        description=f"Show an image's digests, its layers with what they hold, and its env. REF: {FORMS}.",
    )
    p.add_argument("reference", metavar="REF", help="an image location (above)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reprobuild.manifest.gate import inspect_image

    info = inspect_image(args.reference)
    if args.json:
        data(json.dumps(info, indent=2, sort_keys=True))
        return 0
    lines = [f"{args.reference}"]
    if "manifests" in info:
        lines.append(f"  index {info['index_digest']}")
        lines += [f"    {m['digest']} {m['platform']}" for m in info["manifests"]]
        data("\n".join(lines))
        return 0
    lines += [
        f"  manifest {info['manifest_digest']}",
        f"  config   {info['config_digest']}",
        f"  platform {info['platform']}, created {info['created']}",
        f"  entrypoint {info['entrypoint']} cmd {info['cmd']}",
        "  layers:",
    ]
    for i, layer in enumerate(info["layers"]):
        lines.append(f"    {i:>2} {layer['digest']} {layer['size']:>12,} {layer.get('holds') or ''}")
    lines.append("  env:")
    lines += [f"    {e}" for e in info["env"]]
    data("\n".join(lines))
    return 0
