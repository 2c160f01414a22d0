"""CycloneDX 1.6 JSON (https://cyclonedx.org/docs/1.6/json/) of an image, rendered from a :class:`Bom`.

``metadata.component`` is the image (``type: container``, purl ``pkg:oci/…@sha256:…``); ``components``
hold the base (a ``container``), its Debian packages (``library``), the wheels (``library``) and the
project (``application``), each with its purl, its SHA-256 where one is pinned, and its licence as an
SPDX ``expression`` when one is declared (none otherwise). ``dependencies`` say the image is made of
the base, the wheels and the project, and the base of its Debian packages.
``metadata.timestamp`` is the build's epoch, ``serialNumber`` a name-based UUID
(:meth:`~reprobuild.attest.bom.Bom.document_uuid`).
"""

from __future__ import annotations

from typing import Any

from reprobuild.attest.bom import Bom
from reprobuild.attest.inventory import WheelPackage

SPEC_VERSION = "1.6"


def _component(
    ref: str,
    type_: str,
    name: str,
    version: str | None,
    *,
    purl: str | None,
    license_expression: str | None = None,
    sha256: str | None = None,
    properties: dict[str, str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"bom-ref": ref, "type": type_, "name": name}
    if version:
        out["version"] = version
    if purl:
        out["purl"] = purl
    if sha256:
        out["hashes"] = [{"alg": "SHA-256", "content": sha256.removeprefix("sha256:")}]
    if license_expression:
        out["licenses"] = [{"expression": license_expression}]
    kept = [{"name": k, "value": v} for k, v in sorted((properties or {}).items()) if v]
    if kept:
        out["properties"] = kept
    return out


def _wheel(bom: Bom, wheel: WheelPackage, type_: str, licence: str | None) -> dict[str, Any]:
    purl = bom.wheel_purl(wheel)
    return _component(
        purl,
        type_,
        wheel.name,
        wheel.version,
        purl=purl,
        license_expression=licence,
        sha256=wheel.sha256,
        properties={"reprobuild:wheel:filename": wheel.filename},
    )


def cyclonedx_document(bom: Bom) -> dict[str, Any]:
    """The CycloneDX 1.6 BOM of ``bom`` as a JSON object (module docstring)."""
    image = bom.image
    image_ref = bom.image_purl()
    components: list[dict[str, Any]] = []
    image_deps: list[str] = []
    base_ref = bom.base_purl()
    deb_refs: list[str] = []
    for deb in bom.base.packages:
        ref = bom.deb_purl(deb.name, deb.version, deb.architecture)
        deb_refs.append(ref)
        components.append(
            _component(
                ref,
                "library",
                deb.name,
                deb.version,
                purl=ref,
                license_expression=deb.license,
                sha256=deb.sha256,
                properties={"reprobuild:deb:source": deb.source or "", "reprobuild:deb:filename": deb.filename or ""},
            )
        )
    dependencies: list[dict[str, Any]] = []
    if base_ref is not None:
        components.insert(
            0,
            _component(
                base_ref,
                "container",
                bom.base_name,
                image.base_digest,
                purl=base_ref,
                properties={"reprobuild:base:reference": image.base_reference},
            ),
        )
        dependencies.append({"ref": base_ref, "dependsOn": deb_refs})
        image_deps.append(base_ref)
    else:
        image_deps.extend(deb_refs)
    for wheel in bom.wheels:
        components.append(_wheel(bom, wheel, "library", wheel.license))
        image_deps.append(components[-1]["bom-ref"])
    if bom.project.wheel is not None:
        components.append(
            _wheel(bom, bom.project.wheel, "application", bom.project.license or bom.project.wheel.license)
        )
        image_deps.append(components[-1]["bom-ref"])
    dependencies.insert(0, {"ref": image_ref, "dependsOn": image_deps})
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{bom.document_uuid('cyclonedx')}",
        "version": 1,
        "metadata": {
            "timestamp": image.created,
            "tools": {"components": [{"type": "application", "name": "repro-build", "version": image.tool_version}]},
            "component": _component(
                image_ref,
                "container",
                image.name,
                image.digest,
                purl=image_ref,
                properties={"reprobuild:target": image.target, "reprobuild:platform": image.platform},
            ),
        },
        "components": components,
        "dependencies": dependencies,
    }
