"""Registry source and sink, over :class:`reprobuild.oci.registry.RegistryClient`.

Pull: the manifest (verified against the digest asked for, or against the digest the registry names
for a tag), then an index is resolved to one platform's image when a platform is given (else every
child is pulled), then the config, then every layer streamed into a staging :class:`BlobStore`
(temp, verify, rename; blobs already there were verified when they entered and are not fetched again).

Push: the exact blobs (no recompression), skipping those the registry already has (the client HEADs
first), then each manifest by digest (children before their index), then the tags.

Blobs move ``jobs`` at a time (default :data:`DEFAULT_JOBS`); manifests and tags are written one by
one, in a fixed order, only once every blob has arrived. What is written never depends on the
scheduling: each blob is content-addressed and verified on its own, and the manifests are the
artifact's exact bytes. A failed blob fails the whole call: the blobs not yet started are not
started, those in flight finish, the error of the first failed blob (in the manifest's order) is
raised, and no manifest or tag is written.
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from reprobuild.errors import OCIError
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image, describe_layer, layer_labels, layers_from_manifest, parse_json_object
from reprobuild.oci.index import Artifact, Index, WalkBudget, select_platform
from reprobuild.oci.layer import Layer
from reprobuild.oci.mediatypes import INDEX_TYPES, MANIFEST_TYPES
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.registry import RegistryClient
from reprobuild.oci.values import Descriptor, Platform

#: Blobs in flight at once. Enough to overlap round trips and keep a link busy without opening more
#: connections than registries' per-client limits tolerate (go-containerregistry's default ``jobs``
#: is 4; Docker pushes 5 and pulls 3 layers at a time).
DEFAULT_JOBS = 4


def run_all(work: Sequence[Callable[[], None]], jobs: int) -> None:
    """Run every callable of ``work``, at most ``jobs`` at once (in order when ``jobs`` is 1).

    After a failure nothing more is started; once the running ones have ended, the error of the
    first failed item in ``work``'s order is raised.
    """
    if jobs <= 1 or len(work) <= 1:
        for item in work:
            item()
        return
    failed = threading.Event()

    def guarded(item: Callable[[], None]) -> None:
        if failed.is_set():
            return
        try:
            item()
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=min(jobs, len(work)), thread_name_prefix="repro-build-blob") as pool:
        futures = [pool.submit(guarded, item) for item in work]
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error


def _fetch_blob(
    client: RegistryClient,
    repository: str,
    desc: Descriptor,
    *,
    store: BlobStore,
    progress: Progress,
    name: str | None = None,
) -> Callable[[], None]:
    """The work of pulling one blob into ``store``: a progress task named ``name`` (a layer's position and
    what it holds) or the digest."""
    label = name or f"blob {desc.digest.algorithm}:{desc.digest.hex[:12]}"

    def work() -> None:
        with progress.task(f"pulling {label} from {client_host(client)}/{repository}", desc.size) as task:

            def fill(f: BinaryIO) -> None:
                task.restart()  # each attempt of the store counts from zero
                client.get_blob(repository, str(desc.digest), f, size=desc.size, progress=task)

            # get_blob checks digest and size while the bytes stream: no second read of the file.
            store.receive(fill, expected=desc.digest)

    return work


def fetch_manifest(
    client: RegistryClient, repository: str, reference: str, progress: Progress
) -> tuple[bytes, str, str | None]:
    """``client.get_manifest`` as a progress task (a slow or silent registry shows which request waits)."""
    sep = "@" if reference.startswith("sha256:") else ":"
    with progress.task(f"fetching manifest {client_host(client)}/{repository}{sep}{reference}") as task:
        data, media_type, digest = client.get_manifest(repository, reference)
        task(len(data))
    return data, media_type, digest


#: Largest image config read into memory. A config holds env, labels and history (a few KB; CUDA images
#: tens of KB); a descriptor that declares more is refused before a byte is fetched.
MAX_CONFIG_BYTES = 16 * 1024 * 1024


def read_config_blob(client: RegistryClient, repository: str, desc: Descriptor, *, what: str) -> bytes:
    """The config blob ``desc`` names, bounded by its declared size and :data:`MAX_CONFIG_BYTES`."""
    if desc.size > MAX_CONFIG_BYTES:
        raise OCIError(
            f"{what}: config blob {desc.digest} declares {desc.size} bytes (the limit is {MAX_CONFIG_BYTES})",
            hint="the manifest is hostile or corrupt; an image config is a few KB",
        )
    buf = io.BytesIO()
    client.get_blob(repository, str(desc.digest), buf, size=desc.size)
    config = buf.getvalue()
    if Digest.of_bytes(config) != desc.digest:
        raise OCIError(f"{what}: config blob {desc.digest} was served with other bytes")
    return config


def pull(
    client: RegistryClient,
    repository: str,
    reference: str,
    store: BlobStore,
    *,
    platform: Platform | None = None,
    progress: Progress = NO_PROGRESS,
    budget: WalkBudget | None = None,
    depth: int = 0,
    jobs: int = DEFAULT_JOBS,
) -> Artifact:
    """Pull ``repository:reference`` (tag or ``sha256:`` digest) into ``store``, ``jobs`` blobs at a time;
    index walks are bounded."""
    budget = budget or WalkBudget(f"{client_host(client)}/{repository}:{reference}")
    budget.enter(depth, reference)
    data, media_type, digest = fetch_manifest(client, repository, reference, progress)
    actual = Digest.of_bytes(data)
    if digest and Digest.parse(digest, origin=f"{repository}:{reference} manifest digest") != actual:
        raise OCIError(f"{repository}:{reference}: manifest bytes hash to {actual}, the registry said {digest}")
    if reference.startswith("sha256:") and Digest.parse(reference) != actual:
        raise OCIError(f"{repository}@{reference}: the registry served a manifest with digest {actual}")
    obj = parse_json_object(data, f"manifest {repository}@{actual}")
    is_index = str(obj.get("mediaType") or media_type) in INDEX_TYPES or "manifests" in obj
    if platform is not None and is_index:
        # Resolve index -> platform manifest first, so other platforms' blobs are never fetched.
        descs = [Descriptor.from_json(d, origin=f"index {repository}@{actual}") for d in obj.get("manifests") or []]
        for d in descs:
            if d.platform is not None and platform.matches(d.platform):
                return pull(
                    client,
                    repository,
                    str(d.digest),
                    store,
                    platform=platform,
                    progress=progress,
                    budget=budget,
                    depth=depth + 1,
                    jobs=jobs,
                )
        available = ", ".join(str(d.platform) for d in descs if d.platform) or "none declared"
        raise OCIError(
            f"image index {repository}@{actual} has no image for platform {platform}",
            hint=f"available platforms: {available}",
        )
    art = _load(
        client, repository, data, media_type, store=store, progress=progress, budget=budget, depth=depth, jobs=jobs
    )
    if platform is not None and isinstance(art, Index):
        return select_platform(art, platform)
    return art


def _load(
    client: RegistryClient,
    repository: str,
    data: bytes,
    media_type: str,
    *,
    store: BlobStore,
    progress: Progress,
    budget: WalkBudget,
    depth: int,
    jobs: int,
) -> Artifact:
    digest = Digest.of_bytes(data)
    what = f"{client_host(client)}/{repository}@{digest}"
    obj = parse_json_object(data, f"manifest {what}")
    media_type = str(obj.get("mediaType") or media_type)
    if media_type in INDEX_TYPES or "manifests" in obj:
        children: list[Artifact] = []
        idx_descs = [Descriptor.from_json(d, origin=f"index {what}") for d in obj.get("manifests") or []]
        for d in idx_descs:
            budget.enter(depth + 1, d.digest)
            child, child_type, _ = fetch_manifest(client, repository, str(d.digest), progress)
            if Digest.of_bytes(child) != d.digest:
                raise OCIError(f"index {what}: child manifest {d.digest} was served with other bytes")
            if len(child) != d.size:
                raise OCIError(
                    f"index {what}: child manifest {d.digest} is {len(child)} bytes, the index says {d.size}"
                )
            children.append(
                _load(
                    client,
                    repository,
                    child,
                    child_type,
                    store=store,
                    progress=progress,
                    budget=budget,
                    depth=depth + 1,
                    jobs=jobs,
                )
            )
        return Index(data, tuple(children))
    if media_type not in MANIFEST_TYPES:
        raise OCIError(f"{what}: unsupported manifest media type {media_type!r}")
    cfg = Descriptor.from_json(obj.get("config"), origin=f"manifest {what} config")
    config = read_config_blob(client, repository, cfg, what=what)

    cfg_obj = parse_json_object(config, f"config of {what}")
    labels = layer_labels(cfg_obj)
    count = len(obj.get("layers") or [])
    wanted: dict[Digest, tuple[Descriptor, str]] = {}

    positions = itertools.count()  # layers_from_manifest asks for the layers in order

    def later(d: Descriptor) -> Path:
        position = next(positions)
        if not store.has(d.digest):
            wanted.setdefault(d.digest, (d, describe_layer(position, count, d.digest, labels)))
        return store.path(d.digest)

    layers = layers_from_manifest(obj, cfg_obj, later, what=f"manifest {what}")
    work = [
        _fetch_blob(client, repository, d, store=store, progress=progress, name=name) for d, name in wanted.values()
    ]
    run_all(work, jobs)
    return Image(data, config, layers)


def client_host(client: RegistryClient) -> str:
    return str(getattr(client, "host", "registry"))


def push(
    client: RegistryClient,
    repository: str,
    artifact: Artifact,
    *,
    tags: Sequence[str] = (),
    chunk_size: int | None = None,
    progress: Progress = NO_PROGRESS,
    jobs: int = DEFAULT_JOBS,
    mount_from: str | None = None,
) -> Digest:
    """Upload ``artifact`` (blobs ``jobs`` at a time, then manifests by digest, then ``tags``); return its digest.

    ``mount_from`` names a repository of the same registry that may hold some layers (a build cache):
    each layer the registry lacks is first asked for as a cross-repository mount, so no byte is sent.
    """
    blobs = blob_uploads(
        client, repository, [artifact], chunk_size=chunk_size, progress=progress, mount_from=mount_from
    )
    run_all(blobs, jobs)
    put_manifests(client, repository, artifact, progress)
    for tag in tags:
        put_tag(client, repository, artifact, tag, progress)
    return artifact.digest


def blob_uploads(
    client: RegistryClient,
    repository: str,
    artifacts: Sequence[Artifact],
    *,
    seen: set[Digest] | None = None,
    chunk_size: int | None = None,
    progress: Progress = NO_PROGRESS,
    mount_from: str | None = None,
) -> list[Callable[[], None]]:
    """The work of uploading every distinct blob of ``artifacts`` (layers then config, image by image)
    that is not in ``seen``, for :func:`run_all`; each blob's digest is added to ``seen``.

    Artifacts often share a blob (every attachment has the same empty config), and several pushes to
    one repository share ``seen`` so that each blob is uploaded once, before any manifest that names
    it: uploading one blob several times at once (one push per thread) lets a registry that links each
    upload into the repository (the distribution registry rewrites the link file) answer, for an
    instant, another manifest's ``PUT`` with ``MANIFEST_BLOB_UNKNOWN``.
    """
    work: list[Callable[[], None]] = []
    seen = set() if seen is None else seen
    for image in (image for artifact in artifacts for image in _images(artifact)):
        labels = layer_labels(image.config)
        for i, layer in enumerate(image.layers):
            if layer.digest not in seen:
                seen.add(layer.digest)
                name = describe_layer(i, len(image.layers), layer.digest, labels)
                work.append(
                    push_layer(
                        client,
                        repository,
                        layer,
                        chunk_size=chunk_size,
                        progress=progress,
                        name=name,
                        mount_from=mount_from,
                    )
                )
        if image.config_digest not in seen:
            seen.add(image.config_digest)
            work.append(_push_config(client, repository, image))
    return work


def _images(artifact: Artifact) -> list[Image]:
    """Every image of ``artifact``, depth first in manifest order."""
    if isinstance(artifact, Index):
        return [image for child in artifact.children for image in _images(child)]
    return [artifact]


def _push_config(client: RegistryClient, repository: str, image: Image) -> Callable[[], None]:
    """The work of uploading one image config blob."""
    config = image.config_bytes

    def work() -> None:
        client.put_blob(repository, str(image.config_digest), len(config), lambda: io.BytesIO(config))

    return work


def push_layer(
    client: RegistryClient,
    repository: str,
    layer: Layer,
    *,
    chunk_size: int | None,
    progress: Progress,
    name: str,
    mount_from: str | None = None,
) -> Callable[[], None]:
    """The work of uploading one layer blob: a progress task named ``name`` (its position and what it holds)."""

    def work() -> None:
        with progress.task(f"pushing {name} to {client_host(client)}/{repository}", layer.size) as task:

            def opener() -> BinaryIO:
                task.restart()  # the client opens the blob again for each attempt
                return layer.open_compressed()

            sent = client.put_blob(
                repository,
                str(layer.digest),
                layer.size,
                opener,
                chunk_size=chunk_size,
                progress=task,
                mount_from=mount_from,
            )
            if not sent:
                task.note("already in the registry")
            elif mount_from is not None and task.done == 0:
                task.note(f"mounted from {mount_from}")

    return work


def put_manifests(client: RegistryClient, repository: str, artifact: Artifact, progress: Progress) -> None:
    """Each manifest by digest, children before the index that names them (a registry may refuse an
    index whose children it does not have); every blob must be there already."""
    if isinstance(artifact, Index):
        for child in artifact.children:
            put_manifests(client, repository, child, progress)
    with progress.task(f"pushing manifest {client_host(client)}/{repository}@{artifact.digest}") as task:
        got = client.put_manifest(repository, str(artifact.digest), artifact.manifest_bytes, artifact.media_type)
        task(len(artifact.manifest_bytes))
    if got != str(artifact.digest):
        raise OCIError(f"pushing {repository}@{artifact.digest}: the registry stored digest {got}")


def put_tag(client: RegistryClient, repository: str, artifact: Artifact, tag: str, progress: Progress) -> None:
    """Tag ``artifact``, whose manifests are there already, ``tag``."""
    with progress.task(f"tagging {client_host(client)}/{repository}:{tag}") as task:
        got = client.put_manifest(repository, tag, artifact.manifest_bytes, artifact.media_type)
        task(len(artifact.manifest_bytes))
    if got != str(artifact.digest):
        raise OCIError(f"pushing {repository}:{tag}: the registry stored digest {got}, expected {artifact.digest}")
