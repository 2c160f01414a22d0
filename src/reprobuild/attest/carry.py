"""An image's attachments (its referrers: SBOMs, provenance, anything else attached to it) read from one
location and written to another, for ``repro-build copy`` and ``repro-build inspect``.

Where they are kept (:mod:`reprobuild.attest.referrers` says how):

- an **OCI layout**: the entries of ``index.json`` with an ``artifactType`` whose ``subject`` is the image;
- a **registry**: the referrers API, else the ``sha256-<hex>`` tag schema (read, and written the same way
  :func:`~reprobuild.attest.referrers.push_referrers` writes them for ``image --push``);
- an archive and the Docker engine keep none.

Every attachment is loaded in full before anything is written: from a registry each artifact manifest is
pulled by digest (:func:`reprobuild.oci.remote.pull` checks the manifest and every blob against their
digests), and each must name the subject it was listed for. Writing copies every blob through the
destination's verified writers (a layout's :class:`~reprobuild.oci.blobstore.BlobStore`, a registry
upload by digest). The subject's own bytes are never touched, so its digest stays what it was.

A subject may be any manifest, an image or an index: :func:`subjects_of` names the artifact copied and,
for an index, every manifest in it, so that what is attached to one platform's image travels too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprobuild.attest.referrers import attach_to_layout, layout_referrers, push_referrers, registry_referrers
from reprobuild.errors import DigestMismatchError, OCIError
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest, sha256_file
from reprobuild.oci.image import Image
from reprobuild.oci.index import Artifact, Index
from reprobuild.oci.location import Location
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.values import Descriptor

#: The location kinds that keep attachments.
KEEPS_ATTACHMENTS = ("oci-layout", "registry")


@dataclass(frozen=True)
class Attachment:
    """One artifact attached to ``subject``, loaded (its blobs verified and on disk)."""

    subject: Descriptor
    artifact: Image

    @property
    def document(self) -> Descriptor | None:
        """The artifact's one blob (the SBOM or statement), or None when it has another shape."""
        layers = self.artifact.layer_descriptors
        return layers[0] if len(layers) == 1 else None

    def to_dict(self) -> dict[str, Any]:
        doc = self.document
        return {
            "digest": str(self.artifact.digest),
            "artifact_type": self.artifact.artifact_type,
            "size": sum(layer.size for layer in self.artifact.layers),
            "manifest_size": len(self.artifact.manifest_bytes),
            "subject": str(self.subject.digest),
            "document": None if doc is None else {"digest": str(doc.digest), "media_type": doc.media_type},
        }


def keeps_attachments(loc: Location) -> bool:
    return loc.kind in KEEPS_ATTACHMENTS


def no_attachments_reason(loc: Location) -> str:
    """Why ``loc`` holds no attachments (for a location that keeps none)."""
    return f"{'an' if loc.kind[0] in 'aeio' else 'a'} {loc.kind} keeps no attachments"


def subjects_of(art: Artifact) -> list[Descriptor]:
    """``art``'s descriptor and, for an index, those of every manifest it holds (depth first)."""
    out = [Descriptor(art.media_type, art.digest, len(art.manifest_bytes))]
    if isinstance(art, Index):
        for child in art.children:
            out += subjects_of(child)
    return out


def _checked(art: Artifact, listed: Descriptor, subject: Descriptor, where: str) -> Image:
    what = f"attachment {listed.digest} of {subject.digest} in {where}"
    if not isinstance(art, Image):
        raise OCIError(
            f"{what} is an index; only artifact manifests are carried",
            hint="copy without attachments (`--no-attachments`), or remove that referrer at the source",
        )
    if art.digest != listed.digest or len(art.manifest_bytes) != listed.size:
        raise OCIError(f"{what}: the manifest read is {art.digest} ({len(art.manifest_bytes)} bytes), not as listed")
    if art.subject is None or art.subject.digest != subject.digest:
        raise OCIError(
            f"{what} names subject {art.subject.digest if art.subject else 'none'}, not {subject.digest}",
            hint="the referrers list is corrupt or hostile; nothing was copied",
        )
    return art


def _verified(art: Image, layout: Path) -> Image:
    """``art`` once each of its blobs in ``layout`` hashes to its digest (a layout reader checks manifests
    and configs as it reads them, blobs only when they are copied: too late for nothing to be written)."""
    for layer in art.layers:
        if sha256_file(layer.path) != (layer.digest, layer.size):
            raise DigestMismatchError(
                f"attachment {art.digest} in {layout}: blob {layer.digest} does not hash to its name",
                hint="the layout is corrupt; copy the image and its attachments again from their source, or copy "
                "without them (`--no-attachments`)",
            )
    return art


def read_attachments(
    loc: Location, subjects: Sequence[Descriptor], staging: Path, *, progress: Progress = NO_PROGRESS
) -> tuple[list[Attachment], str]:
    """Every attachment of each of ``subjects`` at ``loc``, loaded (registry blobs into ``staging``), and
    how they were found. A location that keeps none gives ``[]`` and the reason."""
    if loc.kind == "oci-layout":
        assert loc.path is not None
        found = [
            Attachment(subject, _verified(_checked(art, art.descriptor, subject, str(loc.path)), loc.path))
            for subject in subjects
            for art in layout_referrers(loc.path, subject.digest)
        ]
        return found, f"index.json of {loc.path}"
    if loc.kind != "registry":
        return [], no_attachments_reason(loc)
    from reprobuild.oci.registry import RegistryClient
    from reprobuild.oci.remote import pull

    ref = loc.reference
    assert ref is not None
    store = BlobStore(staging)
    found = []
    hows: list[str] = []
    with RegistryClient(ref.api_host) as client:
        for subject in subjects:
            listed, how = registry_referrers(client, ref.repository, subject.digest)
            hows.append(how)
            seen: set[Digest] = set()
            for desc in listed:
                if desc.digest in seen:
                    continue
                seen.add(desc.digest)
                art = pull(client, ref.repository, str(desc.digest), store, progress=progress)
                found.append(Attachment(subject, _checked(art, desc, subject, f"{ref.name} ({how})")))
    return found, _how(hows)


def _how(hows: Sequence[str]) -> str:
    """One line for the ways the referrers of several subjects were found."""
    if not hows:
        return "none"
    if len(set(hows)) == 1:
        return hows[0]
    if all(h.startswith("tag ") for h in hows):
        return f"tags {', '.join(h.removeprefix('tag ') for h in hows)}"
    return "; ".join(hows)


def write_attachments(loc: Location, attachments: Sequence[Attachment], *, progress: Progress = NO_PROGRESS) -> str:
    """Write ``attachments`` to ``loc`` (a layout or a registry) after their subjects; return how they were
    made findable there."""
    if not attachments:
        return "none"
    if loc.kind == "oci-layout":
        assert loc.path is not None
        attach_to_layout(loc.path, [a.artifact for a in attachments])
        return f"index.json of {loc.path}"
    if loc.kind != "registry":
        raise OCIError(f"{loc}: {no_attachments_reason(loc)}")
    from reprobuild.oci.registry import RegistryClient

    ref = loc.reference
    assert ref is not None
    by_subject: dict[Digest, tuple[Descriptor, list[Image]]] = {}
    for a in attachments:
        by_subject.setdefault(a.subject.digest, (a.subject, []))[1].append(a.artifact)
    hows = []
    with RegistryClient(ref.api_host) as client:
        for subject, artifacts in by_subject.values():
            hows.append(push_referrers(client, ref.repository, subject, artifacts, progress=progress))
    return _how(hows)


def count_attachments(loc: Location, subjects: Sequence[Descriptor]) -> int:
    """How many attachments the subjects have at ``loc``, listed without fetching them."""
    if loc.kind == "oci-layout":
        assert loc.path is not None
        return sum(len(layout_referrers(loc.path, s.digest)) for s in subjects)
    if loc.kind != "registry":
        return 0
    from reprobuild.oci.registry import RegistryClient

    ref = loc.reference
    assert ref is not None
    with RegistryClient(ref.api_host) as client:
        return sum(len({d.digest for d in registry_referrers(client, ref.repository, s.digest)[0]}) for s in subjects)
