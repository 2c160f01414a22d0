"""Descriptors and platforms (OCI image-spec ``descriptor.md`` and ``image-index.md``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from reprobuild.errors import OCIError
from reprobuild.oci.digest import Digest


def _frozen_map(m: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True)
class Platform:
    """``os/architecture[/variant]`` as in an index entry's ``platform`` object."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]`` (e.g. ``linux/amd64``, ``linux/arm64/v8``)."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise OCIError(f"platform {text!r} is not of the form os/arch[/variant]", hint="e.g. `linux/amd64`")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Platform:
        try:
            return cls(str(obj["os"]), str(obj["architecture"]), obj.get("variant"), obj.get("os.version"))
        except (KeyError, TypeError) as e:
            raise OCIError(f"platform object {dict(obj)!r} lacks `os` or `architecture`") from e

    def matches(self, other: Platform) -> bool:
        """True when ``other`` (an index entry) satisfies this request; a missing variant matches any."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return self.variant is None or self.variant == other.variant


@dataclass(frozen=True)
class Descriptor:
    """A typed reference to content: media type, digest and size (+ optional annotations, platform, and the
    ``artifactType`` of an artifact manifest, image-spec 1.1 ``descriptor.md``)."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    platform: Platform | None = None
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "annotations", _frozen_map(self.annotations))
        if self.size < 0:
            raise OCIError(f"descriptor {self.digest} has a negative size {self.size}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        return out

    @classmethod
    def from_json(cls, obj: Any, *, origin: str) -> Descriptor:
        """Parse a descriptor object; errors name ``origin`` (e.g. ``manifest sha256:… layers[2]``)."""
        if not isinstance(obj, Mapping):
            raise OCIError(f"{origin}: descriptor is not a JSON object")
        media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
        if not isinstance(media_type, str) or not isinstance(size, int) or isinstance(size, bool):
            raise OCIError(f"{origin}: descriptor needs a string `mediaType` and an integer `size`")
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, Mapping):
            raise OCIError(f"{origin}: `annotations` is not an object")
        platform = obj.get("platform")
        artifact_type = obj.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise OCIError(f"{origin}: `artifactType` is not a string")
        return cls(
            media_type,
            Digest.parse(str(digest), origin=origin),
            size,
            {str(k): str(v) for k, v in annotations.items()},
            Platform.from_json(platform) if isinstance(platform, Mapping) else None,
            artifact_type,
        )

    def with_annotations(self, annotations: Mapping[str, str]) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size, annotations, self.platform, self.artifact_type)

    def with_platform(self, platform: Platform | None) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size, self.annotations, platform, self.artifact_type)
