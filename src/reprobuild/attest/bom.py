"""The facts both SBOM formats are written from, and how their identifiers are derived.

A :class:`Bom` is a pure value: the image (digest, platform, name), the project, the base and its
Debian packages, and the wheels. SPDX (:mod:`reprobuild.attest.spdx`) and CycloneDX
(:mod:`reprobuild.attest.cyclonedx`) render it; neither reads a clock, the host or a random source.
Their one timestamp is the build's epoch (``SOURCE_DATE_EPOCH``), and their document identifiers
(SPDX ``documentNamespace``, CycloneDX ``serialNumber``) are name-based UUIDs (RFC 9562 version 5)
of the image's manifest digest and the format: the same image always gets the same SBOM bytes, and two
images never share an identifier.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from reprobuild.attest.inventory import BaseInventory, WheelPackage
from reprobuild.attest.purl import purl
from reprobuild.oci.location import without_transport

#: The UUID namespace of repro-build's SBOM identifiers: uuid5(NAMESPACE_URL, "urn:reprobuild:sbom").
SBOM_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:reprobuild:sbom")


@dataclass(frozen=True)
class ImageFacts:
    """The image an SBOM describes."""

    name: str  # the project's normalised name (the purl name of the image)
    target: str
    digest: str  # sha256:… of the image manifest
    platform: str  # os/arch[/variant]
    created: str  # RFC 3339 UTC of the build's epoch
    tool_version: str  # repro-build's version
    base_reference: str  # as the target's config names it
    base_digest: str | None  # the base's manifest digest


@dataclass(frozen=True)
class ProjectFacts:
    name: str
    version: str | None
    license: str | None  # SPDX expression from pyproject.toml, or None
    wheel: WheelPackage | None  # the project's own wheel, when the image installs it


@dataclass(frozen=True)
class Bom:
    image: ImageFacts
    project: ProjectFacts
    base: BaseInventory
    wheels: tuple[WheelPackage, ...]

    def document_uuid(self, kind: str) -> uuid.UUID:
        """The identifier of this image's ``kind`` SBOM (``spdx`` or ``cyclonedx``)."""
        return uuid.uuid5(SBOM_NAMESPACE, f"{self.image.digest} {kind}")

    @property
    def arch(self) -> str:
        return self.image.platform.split("/")[1] if "/" in self.image.platform else self.image.platform

    def image_purl(self) -> str:
        return purl("oci", self.image.name, self.image.digest, qualifiers={"arch": self.arch, "tag": self.image.target})

    @property
    def base_name(self) -> str:
        """The base's short name: ``python`` for ``python:3.11-slim@sha256:…``, ``fakebase`` for
        ``oci-layout:fakebase@sha256:…``, ``debian`` for ``debian:bookworm``."""
        text = without_transport(self.image.base_reference.split("@", 1)[0]).rstrip("/")
        last = text.rsplit("/", 1)[-1]
        return last.split(":", 1)[0] or "base"

    def base_purl(self) -> str | None:
        if not self.image.base_digest:
            return None
        return purl("oci", self.base_name, self.image.base_digest, qualifiers={"arch": self.arch})

    def deb_purl(self, name: str, version: str, arch: str) -> str:
        os_ = self.base.os
        return purl(
            "deb",
            name,
            version,
            namespace=os_.id if os_ else "debian",
            qualifiers={"arch": arch, "distro": (os_.version_codename or "") if os_ else ""},
        )

    @staticmethod
    def wheel_purl(wheel: WheelPackage) -> str:
        return purl("pypi", wheel.name, wheel.version)
