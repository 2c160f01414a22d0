"""SLSA Provenance v1 (https://slsa.dev/spec/v1.0/provenance) in an in-toto Statement v1, from a build manifest.

The statement is a pure function of the build manifest's bytes, so it can be rebuilt from them and
checked at any time (``verify`` does):

- ``subject``: the image, ``{"name": "<project>:<target>", "digest": {"sha256": <manifest digest>}}``;
- ``buildDefinition.buildType``: :data:`BUILD_TYPE`, which gives the fields below their meaning;
- ``externalParameters``: what the builder was asked for: the project (name, version, directory in
  the repository), the target and its effective configuration, and the source (commit, dirty flag,
  the recorded ``source`` label);
- ``internalParameters``: what repro-build fixed itself: the epoch, the compressor, the byte-code mode;
- ``resolvedDependencies``: the commit (``gitCommit``), every lock file, the base (its manifest digest,
  and its base lock when there is one), and every wheel (purl, file name, sha256);
- ``runDetails.builder``: :data:`BUILDER_ID` and the versions of repro-build and uv;
- ``runDetails.byproducts``: the build manifest itself (``content`` = its bytes in base64, with its
  sha256), so that ``repro-build verify --image REF`` can find the manifest from the image alone.

No ``invocationId``, ``startedOn`` or ``finishedOn``: a build's provenance then changes only with the
build manifest (BuildKit's, which carry them, cannot be reproduced: moby/buildkit#3421). The statement
is not signed; docs/how-to/sbom-and-provenance.md says where a signature (cosign, sigstore) goes.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from reprobuild.attest.purl import purl
from reprobuild.errors import AttestError
from reprobuild.manifest.schema import DebianBase, Manifest, parse_manifest, to_json_value

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: The build type this module defines (docs/reference/manifest.md "Provenance" describes its parameters).
BUILD_TYPE = "urn:reprobuild:buildtype:image:v1"
#: Who ran the build. Unsigned, a statement cannot prove who that was; a CI signing identity (cosign
#: keyless) is what binds it to a builder.
BUILDER_ID = "urn:reprobuild:builder:local"
#: The media type of the build manifest carried as a byproduct.
MANIFEST_MEDIA_TYPE = "application/vnd.reprobuild.manifest.v1+json"
MANIFEST_NAME = "manifest.json"


class ProvenanceError(AttestError):
    """A provenance statement that does not describe the image it is attached to, or carries no manifest."""


def _sha(value: object) -> str | None:
    text = str(value or "")
    return text.removeprefix("sha256:") if text.startswith("sha256:") else None


def _dependencies(manifest: Manifest) -> list[dict[str, Any]]:
    deps: list[dict[str, Any]] = []
    source = manifest.source
    if source.commit:
        dep: dict[str, Any] = {"name": "source", "digest": {"gitCommit": source.commit}}
        if source.label.url:
            dep["uri"] = f"git+{source.label.url}@{source.commit}"
        deps.append(dep)
    for name, digest in sorted(manifest.locks.items()):
        if _sha(digest):
            deps.append({"name": name, "digest": {"sha256": _sha(digest)}})
    base = manifest.base
    if _sha(base.manifest_digest):
        deps.append({"name": "base", "uri": base.reference, "digest": {"sha256": _sha(base.manifest_digest)}})
    if isinstance(base, DebianBase) and _sha(base.lock_sha256):
        deps.append({"name": base.lock, "digest": {"sha256": _sha(base.lock_sha256)}})
    for wheel in manifest.wheels:
        deps.append(
            {
                "name": wheel.filename,
                "uri": purl("pypi", wheel.name, wheel.version),
                "digest": {"sha256": wheel.sha256.removeprefix("sha256:")},
            }
        )
    return [{k: v for k, v in d.items() if v} for d in deps]


def provenance_statement(manifest_bytes: bytes) -> dict[str, Any]:
    """The in-toto statement for the build manifest ``manifest_bytes`` (module docstring)."""
    manifest = parse_manifest(manifest_bytes, "the build manifest")
    project, source = manifest.project, manifest.source
    tools = to_json_value(manifest.tools)
    assert isinstance(tools, dict)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": f"{project.name}:{manifest.target}", "digest": {"sha256": _sha(manifest.outputs.manifest_digest)}}
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "project": {"name": project.name, "version": project.version, "path": project.path},
                    "target": manifest.target,
                    "config": manifest.config.target,
                    "source": {"commit": source.commit, "dirty": bool(source.dirty), "url": source.label.url},
                },
                "internalParameters": {
                    "epoch": to_json_value(manifest.epoch),
                    "compressor": manifest.compressor,
                    "bytecode": to_json_value(manifest.bytecode),
                },
                "resolvedDependencies": _dependencies(manifest),
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {k: str(v) for k, v in sorted(tools.items()) if v},
                },
                "metadata": {},
                "byproducts": [
                    {
                        "name": MANIFEST_NAME,
                        "mediaType": MANIFEST_MEDIA_TYPE,
                        "digest": {"sha256": hashlib.sha256(manifest_bytes).hexdigest()},
                        "content": base64.b64encode(manifest_bytes).decode("ascii"),
                    }
                ],
            },
        },
    }


def manifest_from_statement(statement: object, image_digest: str, *, what: str) -> bytes:
    """The build manifest a provenance statement carries, checked: the statement's subject must be
    ``image_digest`` and the carried bytes must hash to the sha256 stated beside them."""
    hint = "the attachment is not repro-build's provenance of this image; pass the build manifest instead"
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise ProvenanceError(f"{what} is not an in-toto Statement v1", hint=hint)
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise ProvenanceError(f"{what} has predicate type {statement.get('predicateType')!r}", hint=hint)
    subjects = statement.get("subject")
    want = image_digest.removeprefix("sha256:")
    if not isinstance(subjects, list) or not any(
        isinstance(s, dict) and isinstance(s.get("digest"), dict) and s["digest"].get("sha256") == want
        for s in subjects
    ):
        raise ProvenanceError(f"{what}: its subject is not the image {image_digest}", hint=hint)
    predicate = statement.get("predicate")
    run = predicate.get("runDetails") if isinstance(predicate, dict) else None
    products = run.get("byproducts") if isinstance(run, dict) else None
    for product in products if isinstance(products, list) else []:
        if not isinstance(product, dict) or product.get("mediaType") != MANIFEST_MEDIA_TYPE:
            continue
        try:
            data = base64.b64decode(str(product.get("content", "")), validate=True)
        except ValueError as e:
            raise ProvenanceError(f"{what}: the build manifest it carries is not base64 ({e})", hint=hint) from e
        digest = (product.get("digest") or {}).get("sha256") if isinstance(product.get("digest"), dict) else None
        if hashlib.sha256(data).hexdigest() != digest:
            raise ProvenanceError(
                f"{what}: the build manifest it carries does not hash to its stated sha256", hint=hint
            )
        return data
    raise ProvenanceError(f"{what} carries no build manifest (no {MANIFEST_MEDIA_TYPE} byproduct)", hint=hint)
