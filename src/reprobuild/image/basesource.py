"""The seam for base images: what a source of base images gets, gives, and records.

A target's ``base`` names where its base image comes from (a registry, an OCI layout, a
``docker save`` archive, the Debian base built from ``.deb`` files, …); each such kind is one
:class:`BaseSource`, registered under its kind in :data:`reprobuild.image.basesources.BASE_SOURCES`.
Every source turns a :class:`BaseRequest` into a :class:`ResolvedBase`: the verified image for the
target's platform and one :class:`BaseRecord`, the shape the build manifest records for every kind.
Adding a kind of base means one class and one registry entry (and its form in the ``base`` grammar).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from reprobuild.config import Config, Target
from reprobuild.errors import BaseImageError, ReproBuildError
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.image import Image
from reprobuild.oci.index import Index, select_platform
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.values import Platform


@dataclass(frozen=True)
class BaseRequest:
    """What every source is given to produce a target's base."""

    config: Config  # the project: relative paths in ``base`` are relative to its root
    target: Target
    store: BlobStore  # verified blobs, shared between builds
    staging: Path  # a scratch directory of this build, for what a source unpacks
    offline: bool = False
    #: The platform manifest an earlier build recorded, for an offline rebuild of a base pinned by index.
    manifest_digest: str | None = None
    #: Where a source reports the blobs it downloads (one named line per blob without a TTY).
    progress: Progress = NO_PROGRESS

    @property
    def root(self) -> Path:
        return self.config.root

    @property
    def what(self) -> str:
        """The base as errors name it."""
        return f"base {self.target.base.text}"

    @property
    def platform(self) -> Platform:
        return Platform(self.target.os, self.target.arch)


@dataclass(frozen=True)
class BaseRecord:
    """What the build manifest says about a base, whatever its kind.

    ``origin`` holds what identifies the base within its kind (the pinned digest and the index digest
    of a registry, layout or archive base; the lock of the Debian base); the other fields every kind has.
    """

    kind: str
    reference: str  # the ``base`` text as configured (a registry reference, ``oci-layout:…``, ``debian:…``)
    platform: str  # ``os/arch``
    manifest_digest: str  # the platform manifest the image is built on
    origin: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        """The record as the build manifest's ``base`` object holds it."""
        assert not {"kind", "reference", "platform", "manifest_digest"} & set(self.origin), self.origin
        return {
            "kind": self.kind,
            "reference": self.reference,
            "platform": self.platform,
            "manifest_digest": self.manifest_digest,
            **self.origin,
        }


@dataclass(frozen=True)
class ResolvedBase:
    """The base image for one platform, and what the manifest records about where it came from.

    ``verified``: every layer blob was hashed against its digest by the source itself as it was read or
    written, just now (the embedded Debian base's cache entries are); else the image build hashes them."""

    image: Image
    record: BaseRecord
    verified: bool = False


class BaseSource(Protocol):
    """One kind of base: reads or fetches the image and checks it against its pin."""

    @property
    def kind(self) -> str:
        """The kind in the config and the manifest (``BaseSpec.kind``, ``base.kind``)."""
        ...

    def resolve(self, request: BaseRequest) -> ResolvedBase:
        """The target's base image, every blob verified against its digest, and its record.

        Raises a :class:`~reprobuild.errors.ReproBuildError` subclass naming the base; a digest that
        does not match stays a :class:`~reprobuild.errors.DigestMismatchError`.
        """
        ...


def pick_platform(artifact: Image | Index, request: BaseRequest, what: str) -> tuple[Image, str | None]:
    """The image for the target's platform and, when ``artifact`` was an index, the index digest."""
    target = request.target
    if isinstance(artifact, Index):
        try:
            return select_platform(artifact, request.platform), str(artifact.digest)
        except ReproBuildError as e:
            raise BaseImageError(f"{what}: {e.message}", e.hint) from e
    platform = artifact.platform
    if platform is not None and not platform.matches(request.platform):
        raise BaseImageError(
            f"{what} is for {platform}, but target {target.name!r} is for {target.platform}",
            hint="choose a base for the target's platform, or change `platform`",
        )
    return artifact, None
