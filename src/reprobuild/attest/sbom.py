"""The SBOMs of one image build: gathered from the build's inputs, written beside the image, attached to it.

:func:`image_sboms` is called by ``repro-build image`` (and by ``verify``, which compares what it
regenerates with what the build manifest records) once the image manifest exists: the SBOMs name the
image by digest, so they come after it, and are not part of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprobuild.attest.bom import Bom, ImageFacts, ProjectFacts
from reprobuild.attest.cyclonedx import cyclonedx_document
from reprobuild.attest.inventory import BaseInventory, WheelPackage, read_base, read_lock, spdx_or_none
from reprobuild.attest.referrers import CYCLONEDX_JSON, SPDX_JSON, Document
from reprobuild.attest.spdx import spdx_document
from reprobuild.fsutil import human_json_text
from reprobuild.oci.image import Image

SPDX_FILE = "sbom.spdx.json"
CYCLONEDX_FILE = "sbom.cdx.json"


@dataclass(frozen=True)
class WheelFile:
    """A wheel the image installs, as the build verified it, and the licence its METADATA declares
    (:func:`~reprobuild.attest.inventory.wheel_license`; recorded by a dependency-layer cache entry
    when the build reused the layers without the wheel file)."""

    name: str
    version: str
    filename: str
    sha256: str
    license: str | None


def _wheel(w: WheelFile) -> WheelPackage:
    return WheelPackage(w.name, w.version, w.filename, w.sha256, w.license)


def base_inventory(base: Image, base_lock: Path | None) -> BaseInventory:
    """The base's Debian packages as the SBOMs list them (read from its layers; ``base_lock``: the base lock
    it was built from, which gives each package's ``.deb`` hash). Independent of the rest of the image, so
    a build reads it while its own layers are made."""
    return read_base(base.layers, lock=read_lock(base_lock) if base_lock is not None else None)


def make_bom(
    *,
    image: Image,
    project_name: str,
    project_version: str | None,
    project_license: str | None,
    target: str,
    platform: str,
    created: str,
    tool_version: str,
    base_reference: str,
    base_digest: str | None,
    base_inventory: BaseInventory,
    wheels: Sequence[WheelFile],
    project_wheel: WheelFile | None,
) -> Bom:
    """Everything the SBOMs say about one image (``base_inventory``: :func:`base_inventory` of its base;
    reads the wheels' METADATA)."""
    return Bom(
        ImageFacts(
            project_name, target, str(image.digest), platform, created, tool_version, base_reference, base_digest
        ),
        ProjectFacts(
            project_name,
            project_version,
            spdx_or_none(project_license),
            _wheel(project_wheel) if project_wheel is not None else None,
        ),
        base_inventory,
        tuple(sorted((_wheel(w) for w in wheels), key=lambda w: (w.name, w.filename))),
    )


def sbom_documents(bom: Bom) -> tuple[Document, Document]:
    """The SPDX 2.3 and CycloneDX 1.6 documents of ``bom`` (sorted keys, indented, trailing newline)."""
    return (
        Document(SPDX_FILE, SPDX_JSON, human_json_text(spdx_document(bom)).encode(), {}),
        Document(CYCLONEDX_FILE, CYCLONEDX_JSON, human_json_text(cyclonedx_document(bom)).encode(), {}),
    )


def attestation_record(document: Document, artifact: Image) -> dict[str, Any]:
    """What the build manifest records of one attached document (``attestations`` entries)."""
    return {
        "artifact_manifest": str(artifact.digest),
        "file": document.name,
        "media_type": document.media_type,
        "sha256": str(document.digest),
        "size": len(document.data),
    }
