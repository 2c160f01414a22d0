"""The provenance step of ``repro-build image``, pushing attachments, and finding a build manifest from an image.

- :func:`attach_provenance`: once ``build/<target>/manifest.json`` is written, derive the provenance
  statement from its bytes, write ``build/<target>/provenance.json`` and attach it to the layout.
- :func:`write_with_attachments`: ``--push``: write the image (or index) and every attachment of its
  images found in their layouts; to a registry in one push
  (:func:`reprobuild.attest.referrers.push_with_referrers`).
- :func:`push_attachments`: push every attachment of an image in a layout to the location the image is
  already at (:func:`reprobuild.attest.referrers.push_referrers`).
- :func:`manifest_from_image`: for ``verify --image REF`` without a manifest: list the referrers of the
  image REF names, take the SLSA provenance among them, and return the build manifest it carries
  (checked against the image's digest and its own sha256).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reprobuild.attest.provenance import PREDICATE_TYPE, manifest_from_statement, provenance_statement
from reprobuild.attest.referrers import (
    IN_TOTO_JSON,
    PREDICATE,
    Document,
    artifact,
    attach_to_layout,
    layout_referrers,
    push_referrers,
    push_with_referrers,
    registry_referrers,
)
from reprobuild.errors import AttestError, ConfigError, DigestMismatchError
from reprobuild.fsutil import atomic_write_bytes, human_json_text
from reprobuild.manifest.schema import parse_manifest
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image, parse_json_object
from reprobuild.oci.layout import read_layout
from reprobuild.oci.location import Location, parse_location
from reprobuild.oci.progress import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from reprobuild.oci.index import Artifact
    from reprobuild.oci.pushahead import BlobsAhead
    from reprobuild.oci.reference import Reference

PROVENANCE_FILE = "provenance.json"
#: Largest attached document read back (an SBOM of a CUDA image is a few hundred KB).
MAX_DOCUMENT_BYTES = 64 << 20


def provenance_document(manifest_bytes: bytes) -> Document:
    """The provenance of a build manifest, as the document attached to the image."""
    statement = provenance_statement(manifest_bytes)
    return Document(PROVENANCE_FILE, IN_TOTO_JSON, human_json_text(statement).encode(), {PREDICATE: PREDICATE_TYPE})


def attach_provenance(layout: Path, image: Image, manifest_path: Path) -> Image:
    """Write ``provenance.json`` beside ``manifest_path`` and attach it to ``image`` in ``layout``."""
    manifest_bytes = manifest_path.read_bytes()
    epoch = parse_manifest(manifest_bytes, manifest_path).epoch.seconds
    created = datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = provenance_document(manifest_bytes)
    path = manifest_path.parent / PROVENANCE_FILE
    atomic_write_bytes(path, document.data)
    attached = artifact(image.descriptor, document, path, created=created)
    attach_to_layout(layout, [attached])
    return attached


def push_attachments(location: Location, layout: Path, image: Image) -> tuple[int, str]:
    """Push the attachments of ``image`` found in ``layout`` to ``location``'s repository, where ``image``
    is already: (count, how)."""
    from reprobuild.oci.registry import RegistryClient

    attachments = layout_referrers(layout, image.digest)
    if not attachments:
        return 0, "none"
    if location.kind == "oci-layout":
        assert location.path is not None
        attach_to_layout(location.path, attachments)
        return len(attachments), f"index.json of {location.path}"
    ref = location.reference
    if location.kind != "registry" or ref is None:
        return 0, f"nothing: a {location.kind} keeps no attachments"
    with RegistryClient(ref.api_host) as client:
        how = push_referrers(client, ref.repository, image.descriptor, attachments)
    return len(attachments), how


def write_with_attachments(
    location: Location,
    artifact: Artifact,
    staging: Path,
    images: Sequence[tuple[Path, Image]],
    *,
    mount_from: Reference | None = None,
    progress: Progress = NO_PROGRESS,
    ahead: BlobsAhead | None = None,
) -> tuple[Digest, int, str]:
    """Write ``artifact`` (an image or an index) to ``location`` (``image --push``), then the attachments of
    each of ``images`` (its layout and one image of ``artifact``) found in its layout; return the digest a
    reader of ``location`` sees, how many attachments were written, and how the last image's are found.

    To a registry, all of it is one push (:func:`reprobuild.attest.referrers.push_with_referrers`): the
    attachments' blobs go up with the image's, their manifests right after the image's. ``ahead``: blobs
    sent to ``location`` while the image was built; its client is used, and what it sent is not sent again.
    """
    from reprobuild.oci.transport import push_target, write_location

    found = [(image, layout_referrers(layout, image.digest)) for layout, image in images]
    attachments = [art for _, arts in found for art in arts]
    if location.kind != "registry" or not attachments:
        digest = write_location(location, artifact, staging, progress=progress, mount_from=mount_from)
        count, how = 0, "none"
        for layout, image in images:
            n, how = push_attachments(location, layout, image)
            count += n
        return digest, count, how
    from reprobuild.oci.registry import RegistryClient

    ref, mount = push_target(location, artifact, mount_from)
    if ahead is not None and not ahead.serves(ref.api_host, ref.repository, mount):
        ahead = None
    with contextlib.ExitStack() as stack:
        client = ahead.client if ahead is not None else stack.enter_context(RegistryClient(ref.api_host))
        hows = push_with_referrers(
            client,
            ref.repository,
            artifact,
            attachments,
            tags=[ref.tag] if ref.tag else [],
            mount_from=mount,
            progress=progress,
            present=ahead.sent() if ahead is not None else (),
        )
    by_subject = dict(zip([image.digest for image, arts in found if arts], hows, strict=True))
    return artifact.digest, len(attachments), by_subject.get(images[-1][1].digest, "none")


def _statement(data: bytes, what: str) -> object:
    try:
        return json.loads(data)
    except ValueError as e:
        raise AttestError(f"{what} is not JSON: {e}", hint="the attachment is corrupt") from e


def manifest_from_image(reference: str) -> tuple[bytes, str]:
    """The build manifest carried by the provenance attached to the image at ``reference``, and where
    it was found. Registries and OCI layouts keep attachments; an engine or an archive does not."""
    loc = parse_location(reference)
    hint = "pass the build manifest: `repro-build verify MANIFEST --image REF`"
    if loc.kind == "oci-layout":
        assert loc.path is not None
        image = read_layout(loc.path, tag=loc.tag, digest=loc.digest)
        if not isinstance(image, Image):
            raise ConfigError(f"{reference} is an index; name one image of it by digest (`@sha256:…`)", hint=hint)
        for art in layout_referrers(loc.path, image.digest):
            if art.artifact_type == IN_TOTO_JSON and len(art.layers) == 1:
                layer = art.layers[0]
                if layer.size > MAX_DOCUMENT_BYTES:
                    continue
                what = f"the provenance {art.digest} in {loc.path}"
                statement = _statement(layer.path.read_bytes(), what)
                return manifest_from_statement(statement, str(image.digest), what=what), what
        raise ConfigError(f"{reference}: the layout holds no provenance of image {image.digest}", hint=hint)
    if loc.kind != "registry":
        raise ConfigError(f"{reference}: a {loc.kind} keeps no attachments, so it holds no provenance", hint=hint)
    return _from_registry(loc, hint)


def _from_registry(loc: Location, hint: str) -> tuple[bytes, str]:
    from reprobuild.oci.registry import RegistryClient

    ref = loc.reference
    assert ref is not None
    with RegistryClient(ref.api_host) as client:
        data, _, digest = client.get_manifest(ref.repository, ref.ref)
        if "manifests" in parse_json_object(data, f"manifest {ref}"):
            raise ConfigError(f"{ref} is an index; name one image of it by digest (`@sha256:…`)", hint=hint)
        subject = Digest.parse(digest, origin=f"manifest {ref}")
        listed, how = registry_referrers(client, ref.repository, subject)
        for desc in listed:
            if desc.artifact_type != IN_TOTO_JSON:
                continue
            art_bytes, _, _ = client.get_manifest(ref.repository, str(desc.digest))
            art = parse_json_object(art_bytes, f"attachment {desc.digest}")
            layers = art.get("layers")
            if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
                continue
            blob = layers[0]
            size = blob.get("size")
            if not isinstance(size, int) or size > MAX_DOCUMENT_BYTES:
                continue
            buf = io.BytesIO()
            client.get_blob(ref.repository, str(blob.get("digest")), buf, size=size)
            what = f"the provenance {desc.digest} of {ref.name}@{subject} (found through the {how})"
            if Digest.of_bytes(buf.getvalue()) != Digest.parse(str(blob.get("digest")), origin=what):
                raise DigestMismatchError(f"{what}: the blob was served with other bytes", hint="do not trust it")
            statement = _statement(buf.getvalue(), what)
            return manifest_from_statement(statement, str(subject), what=what), what
    raise ConfigError(f"{ref.name}@{subject} has no provenance attached ({how})", hint=hint)
