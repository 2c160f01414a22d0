"""SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/) of an image, rendered from a :class:`Bom`.

Packages: the image (``primaryPackagePurpose: CONTAINER``, purl ``pkg:oci/…@sha256:…``), its base
(purl of the base's manifest digest, when it has one), each Debian package of the base, each wheel and
the project. Relationships: the document ``DESCRIBES`` the image; the image ``CONTAINS`` the wheels and
the project and is a ``DESCENDANT_OF`` the base, which ``CONTAINS`` the Debian packages.

``licenseDeclared`` is what the package itself states (:mod:`reprobuild.attest.inventory` says where
each comes from) or ``NOASSERTION``; ``licenseConcluded`` and ``copyrightText`` are always
``NOASSERTION`` (repro-build draws no conclusion of its own), ``downloadLocation`` too (a file's
location is whichever mirror or index a machine is configured with; the sha256 identifies it).
"""

from __future__ import annotations

import re
from typing import Any

from reprobuild.attest.bom import Bom
from reprobuild.attest.inventory import WheelPackage

NOASSERTION = "NOASSERTION"
#: ``spdx.org/spdxdocs/`` is the prefix SPDX 2.3 §6.5 suggests for a namespace without a web site of its own.
NAMESPACE_PREFIX = "https://spdx.org/spdxdocs/"


class _Ids:
    """SPDX element ids (``SPDXRef-`` + letters, digits, ``.`` and ``-``), unique within the document."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def make(self, kind: str, name: str) -> str:
        base = f"SPDXRef-{kind}-" + re.sub(r"[^A-Za-z0-9.-]", "-", name)
        out, n = base, 1
        while out in self.used:
            n += 1
            out = f"{base}-{n}"
        self.used.add(out)
        return out


def _package(
    spdx_id: str,
    name: str,
    version: str | None,
    *,
    purl: str | None,
    license_declared: str | None,
    sha256: str | None = None,
    file_name: str | None = None,
    purpose: str | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": name,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": license_declared or NOASSERTION,
        "copyrightText": NOASSERTION,
    }
    if version:
        out["versionInfo"] = version
    if purl:
        out["externalRefs"] = [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}
        ]
    if sha256:
        out["checksums"] = [{"algorithm": "SHA256", "checksumValue": sha256.removeprefix("sha256:")}]
    if file_name:
        out["packageFileName"] = file_name
    if purpose:
        out["primaryPackagePurpose"] = purpose
    if comment:
        out["comment"] = comment
    return out


def _wheel(ids: _Ids, bom: Bom, wheel: WheelPackage, purpose: str) -> dict[str, Any]:
    return _package(
        ids.make("pypi", wheel.name),
        wheel.name,
        wheel.version,
        purl=bom.wheel_purl(wheel),
        license_declared=wheel.license,
        sha256=wheel.sha256,
        file_name=wheel.filename,
        purpose=purpose,
    )


def spdx_document(bom: Bom) -> dict[str, Any]:
    """The SPDX 2.3 document of ``bom`` as a JSON object (module docstring)."""
    image = bom.image
    ids = _Ids()
    doc_name = f"{image.name}-{image.target}"
    image_id = ids.make("image", doc_name)
    packages = [
        _package(
            image_id,
            f"{image.name}:{image.target}",
            image.digest,
            purl=bom.image_purl(),
            license_declared=None,
            sha256=image.digest,
            purpose="CONTAINER",
            comment=f"the OCI image manifest {image.digest} ({image.platform})",
        )
    ]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}
    ]
    holder = image_id
    base_purl = bom.base_purl()
    if base_purl is not None and image.base_digest:
        base_id = ids.make("base", bom.base_name)
        packages.append(
            _package(
                base_id,
                bom.base_name,
                image.base_digest,
                purl=base_purl,
                license_declared=None,
                sha256=image.base_digest,
                purpose="CONTAINER",
                comment=f"the base image {image.base_reference}"
                + (f" ({bom.base.os.pretty_name})" if bom.base.os and bom.base.os.pretty_name else ""),
            )
        )
        relationships.append(
            {"spdxElementId": image_id, "relationshipType": "DESCENDANT_OF", "relatedSpdxElement": base_id}
        )
        holder = base_id
    for deb in bom.base.packages:
        deb_id = ids.make("deb", f"{deb.name}-{deb.architecture}")
        packages.append(
            _package(
                deb_id,
                deb.name,
                deb.version,
                purl=bom.deb_purl(deb.name, deb.version, deb.architecture),
                license_declared=deb.license,
                sha256=deb.sha256,
                file_name=deb.filename.rsplit("/", 1)[-1] if deb.filename else None,
                purpose="LIBRARY",
                comment=f"Debian source package {deb.source}" if deb.source else None,
            )
        )
        relationships.append({"spdxElementId": holder, "relationshipType": "CONTAINS", "relatedSpdxElement": deb_id})
    for wheel in bom.wheels:
        entry = _wheel(ids, bom, wheel, "LIBRARY")
        packages.append(entry)
        relationships.append(
            {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": entry["SPDXID"]}
        )
    project = bom.project
    if project.wheel is not None:
        entry = _wheel(ids, bom, project.wheel, "APPLICATION")
        entry["licenseDeclared"] = project.license or project.wheel.license or NOASSERTION
        packages.append(entry)
        relationships.append(
            {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": entry["SPDXID"]}
        )
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": doc_name,
        "documentNamespace": f"{NAMESPACE_PREFIX}{doc_name}-{bom.document_uuid('spdx')}",
        "creationInfo": {"created": image.created, "creators": [f"Tool: repro-build-{image.tool_version}"]},
        "packages": packages,
        "relationships": relationships,
    }
