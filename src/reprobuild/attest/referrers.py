"""Attaching SBOMs and provenance to an image as OCI 1.1 artifacts, without touching the image.

An attachment is an image manifest (image-spec 1.1 ``manifest.md`` "Guidelines for Artifact Usage")
with an ``artifactType`` (the document's media type), the empty config (``application/vnd.oci.empty.v1+json``,
the two bytes ``{}``), one blob (the document, with an ``org.opencontainers.image.title``), and a
``subject``: the descriptor of the image manifest. The image's own bytes never change, so neither
does its digest; the attachments point at it, not the other way round.

Where they go:

- **OCI layout** (``build/<target>/oci``): each attachment is an entry of ``index.json`` with its
  ``artifactType`` and no ``org.opencontainers.image.ref.name`` (the image-spec does not yet define
  referrers in a layout; opencontainers/image-spec#1171 proposes it); a bare ``oci-layout:PATH`` still
  names the image (:func:`reprobuild.oci.layout.read_layout` skips entries with an ``artifactType`` when
  an image is there).
- **Registry** (``image --push``): each attachment is pushed by digest, after its subject, and made
  findable as distribution-spec 1.1 ``spec.md`` "Pushing Manifests with Subject" says: a registry with
  the referrers API (``GET /v2/<name>/referrers/<digest>``) indexes them itself and says so in its
  answer to each push (``OCI-Subject: <subject digest>``); for one whose answer lacks it, the *referrers
  tag schema*: the index tagged ``sha256-<hex of the image digest>`` lists the descriptors of all
  referrers, read first and merged so that attachments pushed by others survive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprobuild.errors import OCIError, ReproBuildError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image, parse_json_object
from reprobuild.oci.layer import Layer
from reprobuild.oci.layout import read_index_json, read_layout, write_layout
from reprobuild.oci.mediatypes import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.values import Descriptor

if TYPE_CHECKING:
    from reprobuild.oci.index import Artifact
    from reprobuild.oci.registry import RegistryClient

SPDX_JSON = "application/spdx+json"
CYCLONEDX_JSON = "application/vnd.cyclonedx+json"
IN_TOTO_JSON = "application/vnd.in-toto+json"
#: The config blob of every artifact manifest (image-spec 1.1 "Guidance for an Empty Descriptor").
EMPTY_CONFIG = b"{}"
TITLE = "org.opencontainers.image.title"
CREATED = "org.opencontainers.image.created"
PREDICATE = "in-toto.io/predicate-type"
#: Largest referrers index read (the registry client's manifest limit is the same 4 MiB).
MAX_REFERRERS = 4096


@dataclass(frozen=True)
class Document:
    """A document to attach: its file name, media type, bytes and extra manifest annotations."""

    name: str
    media_type: str
    data: bytes
    annotations: Mapping[str, str]

    @property
    def digest(self) -> Digest:
        return Digest.of_bytes(self.data)


def artifact(subject: Descriptor, document: Document, blob: Path, *, created: str) -> Image:
    """The artifact manifest attaching ``document`` (stored at ``blob``) to ``subject``."""
    config = Descriptor(OCI_EMPTY, Digest.of_bytes(EMPTY_CONFIG), len(EMPTY_CONFIG))
    layer = Descriptor(document.media_type, document.digest, len(document.data), {TITLE: document.name})
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": document.media_type,
        "config": config.to_json(),
        "layers": [layer.to_json()],
        "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_json(),
        "annotations": {CREATED: created, **document.annotations},
    }
    return Image(canonical_json_bytes(manifest), EMPTY_CONFIG, (Layer(layer, layer.digest, blob),))


def attach_to_layout(layout: Path, artifacts: Sequence[Image]) -> None:
    """Add ``artifacts`` to the layout's ``index.json`` (each once; the image entries are kept)."""
    for art in artifacts:
        write_layout(layout, art)


def layout_referrers(layout: Path, subject: Digest) -> list[Image]:
    """The artifacts in the layout whose ``subject`` is ``subject``, in ``index.json`` order."""
    out = []
    for desc in read_index_json(layout):
        if desc.artifact_type is None:
            continue
        art = read_layout(layout, digest=desc.digest)
        if isinstance(art, Image) and art.subject is not None and art.subject.digest == subject:
            out.append(art)
    return out


def fallback_tag(subject: Digest) -> str:
    """The referrers tag schema's tag for ``subject`` (distribution-spec 1.1 ``spec.md``)."""
    return f"{subject.algorithm}-{subject.hex}"


def _descriptor(art: Image) -> dict[str, Any]:
    desc = art.descriptor.to_json()
    desc.pop("platform", None)
    annotations = art.manifest.get("annotations")
    if isinstance(annotations, dict) and annotations:
        desc["annotations"] = annotations
    return desc


def _listed(data: bytes, what: str) -> list[dict[str, Any]]:
    obj = parse_json_object(data, what)
    manifests = obj.get("manifests")
    if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
        raise OCIError(f"{what}: `manifests` is not a list of descriptors")
    if len(manifests) > MAX_REFERRERS:
        raise OCIError(f"{what} lists {len(manifests)} referrers (the limit is {MAX_REFERRERS})")
    for i, m in enumerate(manifests):
        Descriptor.from_json(m, origin=f"{what} manifests[{i}]")
    return list(manifests)


def registry_referrers(client: RegistryClient, repository: str, subject: Digest) -> tuple[list[Descriptor], str]:
    """The referrers of ``subject``: from the referrers API, else the fallback tag's index; and which."""
    data = client.get_referrers(repository, str(subject))
    if data is not None:
        listed = _listed(data, f"referrers of {repository}@{subject}")
        how = "referrers API"
    else:
        tag = fallback_tag(subject)
        if client.head_manifest(repository, tag) is None:
            return [], f"tag {tag} (absent)"
        data, _, _ = client.get_manifest(repository, tag)
        listed = _listed(data, f"{repository}:{tag}")
        how = f"tag {tag}"
    return [Descriptor.from_json(m, origin=f"referrers of {subject}") for m in listed], how


def push_referrers(
    client: RegistryClient,
    repository: str,
    subject: Descriptor,
    artifacts: Sequence[Image],
    *,
    progress: Progress = NO_PROGRESS,
) -> str:
    """Push ``artifacts`` (which refer to ``subject``, a manifest of any media type: an image or an index,
    already in the repository) and make them findable; return how (see module doc)."""
    from reprobuild.oci.remote import DEFAULT_JOBS, blob_uploads, run_all

    groups = _by_subject([subject], artifacts)
    run_all(blob_uploads(client, repository, artifacts, progress=progress), DEFAULT_JOBS)
    return _attach(client, repository, groups, progress=progress, jobs=DEFAULT_JOBS)[0]


def push_with_referrers(
    client: RegistryClient,
    repository: str,
    artifact: Artifact,
    artifacts: Sequence[Image],
    *,
    tags: Sequence[str] = (),
    mount_from: str | None = None,
    progress: Progress = NO_PROGRESS,
    present: Iterable[Digest] = (),
) -> list[str]:
    """Push ``artifact`` (an image, or an index with its images), tag it ``tags``, and push ``artifacts``,
    which refer to it or to one of its images, and make them findable; return how, one entry per subject
    referred to, in the order of ``artifacts``.

    One push, so that the attachments cost little more than the image: every distinct blob of them all,
    :data:`~reprobuild.oci.remote.DEFAULT_JOBS` at a time (the image's layers mounted from ``mount_from``
    where the registry lacks them), then the image's manifests, then at once its tags and the attachments'
    manifests, then the referrers tag schema's index where the registry did not index them itself. The
    attachments still follow the manifest they refer to. Distribution-spec 1.1 ("Push") makes a registry
    accept a referrer before its subject, but that rule is new in 1.1, and this way a push that fails
    half-way leaves no attachment naming a manifest the registry does not have. It costs one round trip.
    ``present``: blobs this push has already put in the repository (:class:`reprobuild.oci.pushahead.BlobsAhead`).
    """
    from reprobuild.oci.remote import DEFAULT_JOBS, blob_uploads, put_manifests, put_tag, run_all

    groups = _by_subject(_manifests(artifact), artifacts)
    seen: set[Digest] = set(present)
    blobs = blob_uploads(client, repository, [artifact], seen=seen, mount_from=mount_from, progress=progress)
    blobs += blob_uploads(client, repository, artifacts, seen=seen, progress=progress)
    run_all(blobs, DEFAULT_JOBS)
    put_manifests(client, repository, artifact, progress)

    def tag_work(tag: str) -> Callable[[], None]:
        return lambda: put_tag(client, repository, artifact, tag, progress)

    return _attach(client, repository, groups, also=[tag_work(t) for t in tags], progress=progress, jobs=DEFAULT_JOBS)


def _by_subject(subjects: Sequence[Descriptor], artifacts: Sequence[Image]) -> list[tuple[Descriptor, list[Image]]]:
    """``artifacts`` grouped by the one of ``subjects`` each refers to, in the order of ``artifacts``."""
    known = {s.digest: s for s in subjects}
    groups: dict[Digest, tuple[Descriptor, list[Image]]] = {}
    for art in artifacts:
        subject = known.get(art.subject.digest) if art.subject is not None else None
        if subject is None:
            named = ", ".join(str(s.digest) for s in subjects)
            raise OCIError(f"artifact {art.digest} does not refer to {named}")
        groups.setdefault(subject.digest, (subject, []))[1].append(art)
    return list(groups.values())


def _attach(
    client: RegistryClient,
    repository: str,
    groups: Sequence[tuple[Descriptor, Sequence[Image]]],
    *,
    also: Sequence[Callable[[], None]] = (),
    progress: Progress,
    jobs: int,
) -> list[str]:
    """Push the artifacts of each group (every blob is there, and so is each subject), ``jobs`` at a time
    along with ``also``, and read each subject's fallback index meanwhile; then, for each subject the
    registry did not index every artifact of, push that index with them added (spec.md "Pushing Manifests
    with Subject"); return how each group is found."""
    from reprobuild.oci.remote import client_host, run_all

    indexed: dict[Digest, bool] = {}
    found: dict[Digest, list[dict[str, Any]] | ReproBuildError] = {}

    def put(art: Image, subject: Digest) -> Callable[[], None]:
        def work() -> None:
            with progress.task(f"pushing manifest {client_host(client)}/{repository}@{art.digest}") as task:
                indexed[art.digest] = client.put_referrer(repository, art.manifest_bytes, art.media_type, str(subject))
                task(len(art.manifest_bytes))

        return work

    def read(subject: Digest) -> Callable[[], None]:
        def work() -> None:
            # Read while the artifacts go up; what it found counts only if the registry did not index them.
            try:
                found[subject] = _fallback_listed(client, repository, fallback_tag(subject))
            except ReproBuildError as e:
                found[subject] = e

        return work

    puts = [put(art, subject.digest) for subject, arts in groups for art in arts]
    run_all([*also, *puts, *(read(subject.digest) for subject, _ in groups)], jobs)
    hows: list[str] = []
    pending: list[Callable[[], None]] = []
    for subject, arts in groups:
        if all(indexed[art.digest] for art in arts):
            hows.append("referrers API")
            continue
        tag = fallback_tag(subject.digest)
        listed = found[subject.digest]
        if isinstance(listed, ReproBuildError):
            raise listed
        pending.append(_index_work(client, repository, tag, listed, arts))
        hows.append(f"tag {tag}")
    run_all(pending, jobs)
    return hows


def _fallback_listed(client: RegistryClient, repository: str, tag: str) -> list[dict[str, Any]]:
    """The descriptors the fallback index ``tag`` lists (none when there is no such tag)."""
    if client.head_manifest(repository, tag) is None:
        return []
    data, _, _ = client.get_manifest(repository, tag)
    return _listed(data, f"{repository}:{tag}")


def _index_work(
    client: RegistryClient, repository: str, tag: str, listed: list[dict[str, Any]], artifacts: Sequence[Image]
) -> Callable[[], None]:
    """The work of pushing the fallback index ``tag``: what it ``listed``, and each of ``artifacts`` not yet
    listed (others' referrers are kept; none is listed twice)."""
    known = {str(m.get("digest")) for m in listed}
    manifests = [*listed, *(_descriptor(a) for a in artifacts if str(a.digest) not in known)]
    index = canonical_json_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})

    def work() -> None:
        client.put_manifest(repository, tag, index, OCI_INDEX)

    return work


def _manifests(artifact: Artifact) -> list[Descriptor]:
    """The descriptors of ``artifact`` and of every manifest in it (an index's children, depth first)."""
    from reprobuild.oci.index import Index

    children = artifact.children if isinstance(artifact, Index) else ()
    return [artifact.descriptor, *(d for child in children for d in _manifests(child))]
