"""``repro-build inspect REF``: digests, layers with what they hold, env, and the attachments (SBOMs,
provenance) with a one-line summary each (``--json`` for scripts)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from reprobuild.cli.output import data
from reprobuild.oci.location import FORMS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "inspect",
        help="show an image's digests, layers, env and attachments",
        description=f"Show an image's digests, its layers with what they hold, its env, and what is attached to it "
        f"(SBOMs, provenance, signatures: read from a layout's index.json or a registry's referrers). REF: {FORMS}.",
    )
    p.add_argument("reference", metavar="REF", help="an image location (above)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def attachment_lines(info: dict[str, Any]) -> list[str]:
    """The ``attachments`` section: where they were looked for, then one line each (type, digest, size, summary)."""
    attachments = info.get("attachments") or []
    lines = [f"  attachments: {len(attachments)} ({info.get('attachments_from')})"]
    for a in attachments:
        summary = f"  {a['summary']}" if a.get("summary") else ""
        lines.append(f"    {a['artifact_type'] or '(no artifactType)'} {a['digest']} {a['size']:>10,}{summary}")
        if a["subject"] != info.get("manifest_digest", info.get("index_digest")):
            lines.append(f"      attached to {a['subject']}")
    return lines


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
        lines += attachment_lines(info)
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
    lines += attachment_lines(info)
    data("\n".join(lines))
    return 0
