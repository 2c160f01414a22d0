"""OCI image layout directories (OCI image-spec ``image-layout.md``): read and write.

A layout is ``oci-layout`` (``{"imageLayoutVersion": "1.0.0"}``), ``index.json`` (descriptors of the
stored images, a tag in the ``org.opencontainers.image.ref.name`` annotation) and ``blobs/sha256/<hex>``.

Reading checks manifests and configs against their names right away; layer blobs are checked when
they are copied (streaming) and by :func:`reprobuild.oci.validate.validate_layout`. Writing copies
each blob through :class:`BlobStore` (temp, verify, rename) and replaces ``index.json`` atomically last,
so a reader never sees an index naming a missing blob.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reprobuild.errors import OCIError
from reprobuild.fsutil import atomic_write_bytes, canonical_json_bytes
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest, sha256_file
from reprobuild.oci.image import Image, layers_from_manifest, parse_json_object
from reprobuild.oci.index import Artifact, Index, WalkBudget
from reprobuild.oci.layer import Layer
from reprobuild.oci.mediatypes import INDEX_TYPES, MANIFEST_TYPES, OCI_INDEX
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.values import Descriptor

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
#: Largest ``index.json`` read (the same bound as an archive's metadata files).
MAX_INDEX_JSON_BYTES = 16 * 1024 * 1024


def load_manifest(
    read_blob: Callable[[Digest, str], bytes],
    layer_path: Callable[[Descriptor], Path],
    desc: Descriptor,
    *,
    what: str,
    budget: WalkBudget | None = None,
    depth: int = 0,
) -> Artifact:
    """Load an image or index (recursively) given a verified-blob reader; shared by layout and archive readers.

    The walk is bounded (:class:`~reprobuild.oci.index.WalkBudget`): nesting depth and total manifests.
    """
    budget = budget or WalkBudget(what)
    budget.enter(depth, desc.digest)
    data = read_blob(desc.digest, f"{what} manifest {desc.digest}")
    if len(data) != desc.size:
        raise OCIError(
            f"{what}: manifest {desc.digest} is {len(data)} bytes, its descriptor says {desc.size}",
            hint="the index is hostile or corrupt; a descriptor's size must be exact (image-spec descriptor.md)",
        )
    obj = parse_json_object(data, f"{what} manifest {desc.digest}")
    media_type = obj.get("mediaType", desc.media_type)
    if media_type in INDEX_TYPES or "manifests" in obj:
        children: list[Artifact] = []
        for i, child in enumerate(obj.get("manifests") or []):
            d = Descriptor.from_json(child, origin=f"{what} index {desc.digest} manifests[{i}]")
            children.append(load_manifest(read_blob, layer_path, d, what=what, budget=budget, depth=depth + 1))
        return Index(data, tuple(children))
    if media_type not in MANIFEST_TYPES:
        raise OCIError(f"{what}: manifest {desc.digest} has unsupported media type {media_type!r}")
    cfg = Descriptor.from_json(obj.get("config"), origin=f"{what} manifest {desc.digest} config")
    config = read_blob(cfg.digest, f"{what} config {cfg.digest}")
    if len(config) != cfg.size:
        raise OCIError(f"{what}: config {cfg.digest} is {len(config)} bytes, its descriptor says {cfg.size}")
    cfg_obj = parse_json_object(config, f"{what} config {cfg.digest}")
    layers = layers_from_manifest(obj, cfg_obj, layer_path, what=f"{what} manifest {desc.digest}")
    return Image(data, config, layers)


def _layout_layer_path(store: BlobStore, what: str) -> Callable[[Descriptor], Path]:
    def get(d: Descriptor) -> Path:
        p = store.path(d.digest)
        if not p.is_file():
            raise OCIError(f"{what}: layer blob {d.digest} is missing", hint="the layout is incomplete; copy it again")
        if p.stat().st_size != d.size:
            raise OCIError(
                f"{what}: layer blob {d.digest} has {p.stat().st_size} bytes, its descriptor says {d.size}",
                hint="the blob is truncated or corrupt; copy the image again",
            )
        return p

    return get


def read_index_json(path: Path) -> list[Descriptor]:
    what = f"OCI layout {path}"
    if not path.is_dir():
        raise OCIError(f"{what} does not exist", hint="check the path after `oci-layout:`")
    marker = path / "oci-layout"
    if not marker.is_file():
        raise OCIError(f"{what} has no `oci-layout` file", hint="is this an OCI image layout directory?")
    version = parse_json_object(marker.read_bytes(), f"{what}/oci-layout").get("imageLayoutVersion")
    if version != "1.0.0":
        raise OCIError(f"{what}: unsupported imageLayoutVersion {version!r}")
    try:
        size = (path / "index.json").stat().st_size
        if size > MAX_INDEX_JSON_BYTES:
            raise OCIError(
                f"{what}/index.json is {size} bytes (the limit is {MAX_INDEX_JSON_BYTES})",
                hint="the layout is hostile or corrupt",
            )
        index = parse_json_object((path / "index.json").read_bytes(), f"{what}/index.json")
    except FileNotFoundError as e:
        raise OCIError(f"{what} has no index.json") from e
    return [
        Descriptor.from_json(d, origin=f"{what}/index.json manifests[{i}]")
        for i, d in enumerate(index.get("manifests") or [])
    ]


def read_layout(path: Path, *, tag: str | None = None, digest: Digest | None = None) -> Artifact:
    """The image or index in the layout at ``path`` named by ``tag`` or ``digest``, or its only one."""
    what = f"OCI layout {path}"
    entries = read_index_json(path)
    if digest is not None:
        chosen = [d for d in entries if d.digest == digest]
        if not chosen:
            # A digest may also name a child of a stored index.
            store = BlobStore(path)
            if not store.has(digest):
                raise OCIError(f"{what} has no manifest {digest}")
            data = store.read_verified(digest, what=f"{what} manifest")
            mt = parse_json_object(data, f"{what} manifest {digest}").get("mediaType", "")
            chosen = [Descriptor(str(mt), digest, len(data))]
    elif tag is not None:
        chosen = [d for d in entries if d.annotations.get(REF_NAME) == tag]
        if not chosen:
            tags = sorted({d.annotations[REF_NAME] for d in entries if REF_NAME in d.annotations})
            raise OCIError(f"{what} has no image tagged {tag!r}", hint=f"tags present: {', '.join(tags) or 'none'}")
    else:
        # Attachments (SBOMs, provenance: artifact manifests whose `subject` is an image, listed with an
        # `artifactType`) are not what a bare layout path names when an image is there too.
        chosen = [d for d in entries if d.artifact_type is None] or entries
        if len(chosen) != 1:
            raise OCIError(
                f"{what} holds {len(chosen)} images; name one",
                hint="use `oci-layout:PATH:TAG` or `oci-layout:PATH@sha256:…`",
            )
    store = BlobStore(path)
    return load_manifest(
        lambda d, w: store.read_verified(d, what=w), _layout_layer_path(store, what), chosen[0], what=what
    )


def _all_blobs(artifact: Artifact) -> list[tuple[Digest, bytes | Layer]]:
    """Every blob of ``artifact`` in a fixed order: layers, config, manifest, children first."""
    out: list[tuple[Digest, bytes | Layer]] = []
    if isinstance(artifact, Index):
        for child in artifact.children:
            out += _all_blobs(child)
    else:
        out += [(layer.digest, layer) for layer in artifact.layers]
        out.append((artifact.config_digest, artifact.config_bytes))
    out.append((artifact.digest, artifact.manifest_bytes))
    return out


def write_blobs(store: BlobStore, artifact: Artifact, progress: Progress = NO_PROGRESS) -> None:
    """Copy every blob of ``artifact`` into ``store``, verifying each one while it streams."""
    for digest, blob in _all_blobs(artifact):
        if isinstance(blob, bytes):
            if not store.has(digest):
                store.put_bytes(blob, expected=digest, what=f"blob {digest}")
            continue
        dest = store.path(digest)
        if dest.is_file():
            if dest.samefile(blob.path) or sha256_file(dest) == (digest, blob.size):
                continue
            dest.unlink()  # a corrupt entry in the destination: replace it with verified bytes
        # Never a hard link: an output sharing an inode with a cache entry would let an edit of the
        # output corrupt the cache (and every later build). A reflink where the file system has one.
        # Named without the directory: a build writes into a staging directory that is renamed at the end.
        with progress.task(f"writing blob {digest.algorithm}:{digest.hex[:12]} into the OCI layout", blob.size) as task:
            store.copy_file(blob.path, expected=digest, size=blob.size, what=f"layer {digest} from {blob.path}")
            task(blob.size)


def write_layout(
    path: Path, artifact: Artifact, *, tag: str | None = None, progress: Progress = NO_PROGRESS
) -> Descriptor:
    """Add ``artifact`` to the layout at ``path`` (created if absent) and return its index.json descriptor.

    An existing entry with the same tag is replaced; without a tag, an entry with the same digest is
    kept once.
    """
    path.mkdir(parents=True, exist_ok=True)
    store = BlobStore(path)
    write_blobs(store, artifact, progress)
    existing = read_index_json(path) if (path / "index.json").is_file() and (path / "oci-layout").is_file() else []
    desc = artifact.descriptor
    if tag is not None:
        desc = desc.with_annotations({REF_NAME: tag})
        kept = [d for d in existing if d.annotations.get(REF_NAME) != tag]
    else:
        kept = [d for d in existing if not (d.digest == desc.digest and REF_NAME not in d.annotations)]
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [d.to_json() for d in [*kept, desc]],
    }
    atomic_write_bytes(path / "oci-layout", canonical_json_bytes(LAYOUT_VERSION))
    atomic_write_bytes(path / "index.json", canonical_json_bytes(index))
    return desc
