"""What ``image --json`` reports about one built target: digests, paths, sizes, layers, timing."""

from __future__ import annotations

from typing import Any

from reprobuild.image.build import ImageResult
from reprobuild.manifest.schema import MANIFEST_NAME


def image_record(
    result: ImageResult, *, seconds: float, image_id: str | None, tag: str | None, pushed: str | None
) -> dict[str, Any]:
    """The JSON record of one target's image (``smoke`` is added by the caller when it ran)."""
    layers = [layer.to_dict() for layer in result.layers]
    out = result.layout.parent
    return {
        "target": result.target,
        "digest": result.digest,
        "config_digest": str(result.image.config_digest),
        "platform": result.image.config.get("os", "") + "/" + result.image.config.get("architecture", ""),
        "layout": str(result.layout),
        "archive": str(result.archive),
        "manifest": str(out / MANIFEST_NAME),
        "layers": layers,
        "compressed_size": sum(layer["size"] for layer in layers),
        "seconds": round(seconds, 3),
        "loaded": None if image_id is None else {"image_id": image_id, "tag": tag},
        "pushed": pushed,
        "smoke": None,
    }
