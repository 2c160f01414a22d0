"""Image indexes (OCI image-spec ``image-index.md``; Docker manifest lists are read too).

An :class:`Index` keeps its exact bytes and its loaded children (images or nested indexes), so a
copy preserves every digest. :func:`new_index` derives the JSON from the children in one place.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Union

from reprobuild.errors import OCIError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image, parse_json_object
from reprobuild.oci.mediatypes import INDEX_TYPES, OCI_INDEX
from reprobuild.oci.values import Descriptor, Platform

Artifact = Union[Image, "Index"]

#: Deepest nesting of indexes a walk follows. Real ones nest at most twice (a multi-platform index of
#: images plus attestation manifests); a hostile one can nest thousands deep (RecursionError before).
MAX_INDEX_DEPTH = 8
#: Most manifests one walk loads, counting a manifest each time it is referenced. A small index whose
#: children all point at the same wide index grows exponentially (40 wide, 5 deep: 72 KB, 100 M nodes).
MAX_WALK_MANIFESTS = 4096


class WalkBudget:
    """Depth and total-size limits for one walk of an index tree (layout, archive or registry)."""

    def __init__(self, what: str, *, max_depth: int = MAX_INDEX_DEPTH, max_manifests: int = MAX_WALK_MANIFESTS):
        self.what = what
        self.max_depth = max_depth
        self.max_manifests = max_manifests
        self.loaded = 0

    def enter(self, depth: int, digest: object) -> None:
        """Count one manifest at ``depth`` (0 = the root); raise :class:`OCIError` past a limit."""
        self.loaded += 1
        if depth > self.max_depth:
            raise OCIError(
                f"{self.what}: manifest {digest} is nested {depth} indexes deep (the limit is {self.max_depth})",
                hint="the index is hostile or corrupt; real images nest indexes at most twice",
            )
        if self.loaded > self.max_manifests:
            raise OCIError(
                f"{self.what}: the index tree references more than {self.max_manifests} manifests",
                hint="the index is hostile or corrupt (indexes that repeat the same children multiply)",
            )


@dataclass(frozen=True)
class Index:
    """An index and its children, in the order of its ``manifests`` list."""

    manifest_bytes: bytes
    children: tuple[Artifact, ...]

    def __post_init__(self) -> None:
        what = f"image index {self.digest}"
        if self._manifest.get("schemaVersion") != 2:
            raise OCIError(f"{what}: schemaVersion is not 2")
        if self.media_type not in INDEX_TYPES:
            raise OCIError(f"{what}: media type {self.media_type!r} is not an index type")
        descs = self.manifests
        if len(descs) != len(self.children):
            raise OCIError(f"{what}: lists {len(descs)} manifests but {len(self.children)} were given")
        for i, (d, child) in enumerate(zip(descs, self.children, strict=True)):
            if d.digest != child.digest or d.size != len(child.manifest_bytes):
                raise OCIError(f"{what}: manifests[{i}] does not match the manifest given for it")

    @cached_property
    def digest(self) -> Digest:
        return Digest.of_bytes(self.manifest_bytes)

    @cached_property
    def _manifest(self) -> dict[str, Any]:
        return parse_json_object(self.manifest_bytes, f"image index {Digest.of_bytes(self.manifest_bytes)}")

    @property
    def manifest(self) -> dict[str, Any]:
        """A parsed copy of the index JSON (mutating it changes nothing)."""
        return copy.deepcopy(self._manifest)

    @property
    def media_type(self) -> str:
        return str(self._manifest.get("mediaType", OCI_INDEX))

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.manifest_bytes))

    @property
    def manifests(self) -> tuple[Descriptor, ...]:
        items = self._manifest.get("manifests")
        if not isinstance(items, list):
            raise OCIError(f"image index {self.digest}: `manifests` is not a list")
        return tuple(
            Descriptor.from_json(d, origin=f"image index {self.digest} manifests[{i}]") for i, d in enumerate(items)
        )


def new_index(
    children: Sequence[tuple[Artifact, Platform | None]], annotations: Mapping[str, str] | None = None
) -> Index:
    """An OCI index of ``children``; each entry's platform is given, or taken from the image config."""
    descs = []
    for child, platform in children:
        p = platform if platform is not None else (child.platform if isinstance(child, Image) else None)
        descs.append(child.descriptor.with_platform(p).to_json())
    obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs}
    if annotations:
        obj["annotations"] = dict(annotations)
    return Index(canonical_json_bytes(obj), tuple(c for c, _ in children))


def select_platform(index: Index, platform: Platform) -> Image:
    """The first image in ``index`` (depth first) whose descriptor platform matches ``platform``."""
    for desc, child in zip(index.manifests, index.children, strict=True):
        if isinstance(child, Index):
            try:
                return select_platform(child, platform)
            except OCIError:
                continue
        p = desc.platform or child.platform
        if p is not None and not child.is_artifact and platform.matches(p):
            return child
    available = ", ".join(str(d.platform) for d in index.manifests if d.platform) or "none declared"
    raise OCIError(
        f"image index {index.digest} has no image for platform {platform}",
        hint=f"available platforms: {available}",
    )
