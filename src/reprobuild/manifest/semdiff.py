"""Why two images differ: the first divergent artifact and the hazard class.

The hazards are those of docs/explanation/determinism.md.

Classes, most telling first: ``base changed`` (a base layer differs), ``content`` (entries added,
removed, or with other bytes or link targets), ``mode/owner``, ``timestamps``, ``entry order``,
``tar format`` (same entries, other header bytes), ``compression only`` (same diff_id, other
compressed bytes: "recompressed, same content", whether the layer is the base's or ours: a compressor or
its version or level changed, or an engine gave the layers back uncompressed), and for the config ``config env``,
``config timestamps`` or ``config``. Layers are read as streams; only small members are kept in
memory for a content description.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from reprobuild.oci.image import Image
from reprobuild.oci.layer import Layer
from reprobuild.wheel.diffreport import (
    MemberDifference,
    describe_content,
    presence_and_order,
    tar_member_differences,
)

#: Members up to this size are kept to describe a content difference (bigger ones: digest only).
_KEEP = 1 << 20
#: How many member differences a divergence lists.
MAX_DETAILS = 20

_SEVERITY = ("content", "mode/owner", "timestamps", "entry order", "tar format")
_KIND_TO_HAZARD = {
    "only-in-a": "content",
    "only-in-b": "content",
    "type": "content",
    "content": "content",
    "mode": "mode/owner",
    "owner": "mode/owner",
    "time": "timestamps",
    "order": "entry order",
    "container": "tar format",
}


@dataclass(frozen=True)
class Divergence:
    """One artifact that differs, the hazard class, and the evidence."""

    artifact: str
    hazard: str
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"artifact": self.artifact, "details": list(self.details), "hazard": self.hazard}

    def __str__(self) -> str:
        head = f"{self.artifact}: {self.hazard}"
        return head + "".join(f"\n    {d}" for d in self.details)


@dataclass(frozen=True)
class _Entry:
    info: tarfile.TarInfo
    sha256: str | None
    body: bytes | None  # kept for members up to _KEEP bytes, to describe a content difference


def _entries(layer: Layer) -> Iterator[_Entry]:
    with layer.open_uncompressed() as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for m in tar:
            sha = body = None
            if m.isfile():
                src = tar.extractfile(m)
                h = hashlib.sha256()
                kept = bytearray()
                if src is not None:
                    while chunk := src.read(1 << 20):
                        h.update(chunk)
                        if len(kept) < _KEEP:
                            kept += chunk
                sha, body = h.hexdigest(), bytes(kept) if m.size <= _KEEP else None
            yield _Entry(m, sha, body)


def diff_layer_entries(a: Layer, b: Layer) -> list[MemberDifference]:
    """Member-level differences between two layers (the wheel report's rules, for streamed tars)."""
    ea, eb = list(_entries(a)), list(_entries(b))
    ia, ib = {e.info.name: e for e in ea}, {e.info.name: e for e in eb}
    out = presence_and_order([e.info.name for e in ea], [e.info.name for e in eb])
    for name in (e.info.name for e in ea if e.info.name in ib):
        x, y = ia[name], ib[name]
        out += tar_member_differences(name, x.info, y.info)
        if x.sha256 != y.sha256:
            detail = (
                describe_content(x.body, y.body)
                if x.body is not None and y.body is not None
                else f"sha256 {x.sha256} vs {y.sha256}"
            )
            out.append(MemberDifference(name, "content", detail))
    if not out:
        out.append(MemberDifference("", "container", "same entries and metadata; tar header or padding bytes differ"))
    return out


def classify(differences: Sequence[MemberDifference]) -> str:
    hazards = {_KIND_TO_HAZARD.get(d.kind, "content") for d in differences}
    return next((h for h in _SEVERITY if h in hazards), "content")


def _json_diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        lines: list[str] = []
        for key in sorted(set(a) | set(b)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a:
                lines.append(f"{sub}: added {json.dumps(b[key], sort_keys=True)[:200]}")
            elif key not in b:
                lines.append(f"{sub}: removed")
            else:
                lines.extend(_json_diff(a[key], b[key], sub))
        return lines
    if path.endswith("Env") and isinstance(a, list) and isinstance(b, list):
        return [f"Env: removed {e!r}" for e in a if e not in b] + [f"Env: added {e!r}" for e in b if e not in a]
    if a != b:
        return [f"{path}: {json.dumps(a, sort_keys=True)[:200]} -> {json.dumps(b, sort_keys=True)[:200]}"]
    return []


def diff_configs(a: dict[str, Any], b: dict[str, Any]) -> Divergence | None:
    lines = _json_diff(a, b)
    if not lines:
        return None
    if all(line.startswith("config.Env") or line.startswith("Env:") for line in lines):
        hazard = "config env"
    elif all(line.startswith(("created", "history")) and "created" in line for line in lines):
        hazard = "config timestamps"
    else:
        hazard = "config"
    return Divergence("image config", hazard, tuple(lines[:MAX_DETAILS]))


def diff_images(a: Image, b: Image, *, layer_names: Sequence[str] = (), base_layers: int = 0) -> list[Divergence]:
    """Divergences between images ``a`` and ``b``, the first divergent artifact first (bottom layer up)."""
    if a.digest == b.digest:
        return []
    out: list[Divergence] = []
    la, lb = a.layers, b.layers
    if len(la) != len(lb):
        out.append(Divergence("layers", "content", (f"{len(la)} layers vs {len(lb)} layers",)))
    for i, (x, y) in enumerate(zip(la, lb, strict=False)):
        if x.digest == y.digest:
            continue
        name = layer_names[i] if i < len(layer_names) else ""
        label = f"layer {i}{f' ({name})' if name else ''}"
        if x.diff_id == y.diff_id:
            # The uncompressed tar is the same (diff_id names it): a base layer too is unchanged, only
            # stored with another compression (an engine's `docker save` gives layers back uncompressed).
            out.append(
                Divergence(
                    label,
                    "compression only",
                    (
                        f"recompressed, same content: diff_id {x.diff_id}; "
                        f"{_stored(x)} {x.digest} ({x.size} bytes) vs {_stored(y)} {y.digest} ({y.size} bytes)",
                    ),
                )
            )
        elif i < base_layers:
            out.append(Divergence(label, "base changed", (f"{x.digest} vs {y.digest}",)))
        else:
            diffs = diff_layer_entries(x, y)
            out.append(Divergence(label, classify(diffs), tuple(str(d) for d in diffs[:MAX_DETAILS])))
    config = diff_configs(_without_rootfs(a.config), _without_rootfs(b.config))
    if config is not None:
        out.append(config)
    if not out:
        out.append(
            Divergence(
                "image manifest",
                "manifest",
                (f"{a.digest} vs {b.digest}", "same layers and config; annotations or media types differ"),
            )
        )
    return out


def _stored(layer: Layer) -> str:
    """How a layer blob is stored: ``gzip``, ``zstd`` or ``uncompressed``."""
    return "uncompressed" if layer.compression == "none" else layer.compression


def _without_rootfs(config: dict[str, Any]) -> dict[str, Any]:
    """The config without ``rootfs`` (diff_ids are compared layer by layer)."""
    return {k: v for k, v in config.items() if k != "rootfs"}
