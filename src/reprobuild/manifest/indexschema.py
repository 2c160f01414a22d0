"""The build manifest of a multi-platform target (``kind: "index"``): the index and each platform's manifest.

``build/<target>/manifest.json`` of a target with ``platforms`` records the OCI image index
(``index``: digest, media type, size) and, in the index's order, the complete build manifest of each
platform's image (``images``: the same :class:`~reprobuild.manifest.schema.Manifest` a one-platform
target writes, also written to ``build/<target>/linux-<arch>/manifest.json``). It is read as strictly as
an image manifest (:func:`reprobuild.manifest.schema.read_section`), and then checked for agreement:
each image is of this target, of the platform listed at its place, of the same commit and epoch.
``docs/reference/index-manifest.schema.json`` publishes the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reprobuild.errors import ManifestError
from reprobuild.fsutil import atomic_write_text, human_json_text
from reprobuild.manifest.schema import SCHEMA, Document, Manifest, parse_json, read_document
from reprobuild.manifest.validate import HINT, refuse, sha256_hex, target_name
from reprobuild.oci.index import Index
from reprobuild.oci.mediatypes import INDEX_TYPES


def _digest(value: Any, path: Path, where: str) -> None:
    sha256_hex(value, path=path, field=where)


def _size(value: Any, path: Path, where: str) -> None:
    if value < 0:
        raise refuse(path, where, value, "a whole number, 0 or more")


def _media_type(value: Any, path: Path, where: str) -> None:
    if value not in INDEX_TYPES:
        raise refuse(path, where, value, "an image index media type")


@dataclass(frozen=True)
class IndexOutputs:
    """The OCI image index of the platforms' images."""

    digest: str = field(metadata={"key": None, "check": _digest, "optional": False})
    media_type: str = field(metadata={"key": None, "check": _media_type, "optional": False})
    size: int = field(metadata={"key": None, "check": _size, "optional": False})


@dataclass(frozen=True)
class IndexManifest(Document):
    """``build/<target>/manifest.json`` of a multi-platform target."""

    schema: str
    kind: Literal["index"]
    target: str = field(
        metadata={"key": None, "check": lambda v, p, w: target_name(v, path=p, field=w), "optional": False}
    )
    #: ``os/arch`` of each image, in the index's order.
    platforms: tuple[str, ...]
    index: IndexOutputs
    images: tuple[Manifest, ...]

    def check(self, path: Path) -> None:
        """The images agree with the index's record: this target, the listed platforms, one commit."""
        if (
            not self.images
            or len(self.images) != len(self.platforms)
            or len(set(self.platforms)) != len(self.platforms)
        ):
            raise ManifestError(f"{path}: `platforms` and `images` do not list the same platforms once each", hint=HINT)
        for i, (platform, image) in enumerate(zip(self.platforms, self.images, strict=True)):
            where = f"images[{i}]"
            if image.schema != SCHEMA:
                raise refuse(path, f"{where}.schema", image.schema, repr(SCHEMA))
            if image.target != self.target:
                raise refuse(path, f"{where}.target", image.target, f"the index's target {self.target!r}")
            if image.outputs.platform != platform:
                raise refuse(path, f"{where}.outputs.platform", image.outputs.platform, f"platforms[{i}] ({platform})")
            first = self.images[0]
            if (image.source, image.epoch) != (first.source, first.epoch):
                raise ManifestError(
                    f"{path}: {where} records another commit or epoch than images[0]",
                    hint="the platforms of one index are built from one commit; " + HINT,
                )


def index_manifest_text(manifest: IndexManifest) -> str:
    return human_json_text(manifest.to_json())


def write_index_manifest(path: Path, manifest: IndexManifest) -> None:
    atomic_write_text(path, index_manifest_text(manifest))


def parse_any_manifest(data: bytes, where: Path | str) -> Manifest | IndexManifest:
    """An image or an index manifest from its bytes, by its ``kind``."""
    parsed = parse_json(data, where)
    if isinstance(parsed, dict) and parsed.get("kind") == "index":
        return IndexManifest.from_json(parsed, where)
    return Manifest.from_json(parsed, where)


def read_any_manifest(path: Path) -> Manifest | IndexManifest:
    """:func:`reprobuild.manifest.schema.read_manifest`, or an index manifest when the file is one."""
    return parse_any_manifest(read_document(path), path)


def make_index_manifest(target: str, index: Index, images: Sequence[Manifest]) -> IndexManifest:
    """The index manifest of ``index``, whose images ``images`` describe in the index's order."""
    return IndexManifest(
        schema=SCHEMA,
        kind="index",
        target=target,
        platforms=tuple(m.outputs.platform for m in images),
        index=IndexOutputs(digest=str(index.digest), media_type=index.media_type, size=len(index.manifest_bytes)),
        images=tuple(images),
    )
