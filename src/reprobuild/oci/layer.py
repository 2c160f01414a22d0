"""Layers: a compressed blob on disk, its descriptor, and its uncompressed identity (diff_id).

``diff_id`` (sha256 of the uncompressed tar) is the first identity of a layer and the compressed
digest the second (docs/explanation/determinism.md). :func:`write_layer` computes both in one streaming
pass (tar -> hash -> compressor -> hash -> blob file), so a 1 GB layer is never held in memory.
Existing blobs (base layers) enter through :func:`layer_from_blob` and are carried byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from reprobuild.epoch import Epoch
from reprobuild.errors import OCIError
from reprobuild.oci.blobstore import BlobStore, HashingWriter
from reprobuild.oci.compress import DECOMPRESS_ERRORS, CompressingWriter, Compressor, open_decompressed
from reprobuild.oci.digest import CHUNK, Digest
from reprobuild.oci.mediatypes import layer_compression, oci_layer_type
from reprobuild.oci.progress import NO_PROGRESS, Progress, size_with_bytes
from reprobuild.oci.tarwriter import LayerEntry, tar_size, write_tar
from reprobuild.oci.values import Descriptor


@dataclass(frozen=True)
class Layer:
    """A layer blob stored at ``path`` with its descriptor and diff_id.

    Blobs of artifact manifests (e.g. BuildKit's in-toto attestations in an index) are carried as
    :class:`Layer` values too, so that copying an index keeps every byte; their media type is not a
    layer type (:attr:`is_layer` is False) and their ``diff_id`` is their digest.
    """

    descriptor: Descriptor
    diff_id: Digest
    path: Path

    @property
    def media_type(self) -> str:
        return self.descriptor.media_type

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest

    @property
    def size(self) -> int:
        return self.descriptor.size

    @property
    def is_layer(self) -> bool:
        """True for a filesystem layer (a tar), False for an opaque artifact blob."""
        return layer_compression(self.media_type) is not None

    @property
    def compression(self) -> str:
        return layer_compression(self.media_type) or "none"

    def open_compressed(self) -> BinaryIO:
        """The blob as stored (what registries and digests see)."""
        try:
            return self.path.open("rb")
        except OSError as e:
            raise OCIError(f"layer {self.digest}: cannot open its blob {self.path}: {e}") from e

    def open_uncompressed(self) -> BinaryIO:
        """The tar stream (what diff_id names); an artifact blob as it is."""
        return open_decompressed(self.open_compressed(), layer_compression(self.media_type) or "none")

    def annotated(self, annotations: Mapping[str, str]) -> Layer:
        """The same blob with ``annotations`` added to its descriptor (for values known only once the blob
        is written, e.g. a table of contents' offset). The blob, its digest and diff_id do not change;
        the manifest that lists the layer does."""
        return replace(
            self, descriptor=replace(self.descriptor, annotations={**self.descriptor.annotations, **annotations})
        )


def _compressed_note(size: int, compressor: Compressor) -> str:
    kind = "uncompressed" if compressor.algorithm == "none" else compressor.algorithm
    return f"{size_with_bytes(size)} {kind}"


class _TarSink:
    """Where the tar goes: hashed for the diff_id, counted for progress, passed to the compressor if any.

    ``tarfile`` asks for ``tell`` (the start offset). Without a compressor it only hashes (for checking a
    cache entry without compressing).
    """

    def __init__(
        self, compressor: CompressingWriter | None = None, advance: Callable[[int], None] | None = None
    ) -> None:
        self._cw = compressor
        self._advance = advance
        self._h = hashlib.sha256()
        self._pos = 0

    def write(self, data: bytes, /) -> int:
        self._h.update(data)
        if self._cw is not None:
            self._cw.write(data)
        self._pos += len(data)
        if self._advance is not None:
            self._advance(len(data))
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass

    @property
    def diff_id(self) -> Digest:
        return Digest(self._h.hexdigest())


def _compress(
    produce: Callable[[_TarSink], object],
    *,
    compressor: Compressor,
    store: BlobStore,
    workers: int | None,
    advance: Callable[[int], None],
    what: str,
) -> tuple[Digest, int, Digest]:
    """Compress the tar that ``produce`` writes into ``store``: (blob digest, size, diff_id)."""
    sinks: list[_TarSink] = []

    def fill(blob: HashingWriter) -> None:
        cw = compressor.writer(blob, workers)
        try:
            sink = _TarSink(cw, advance)
            sinks.append(sink)
            produce(sink)
        finally:
            cw.close()

    digest, size = store.write(fill, what=what)
    return digest, size, sinks[0].diff_id


def write_layer(
    entries: Iterable[LayerEntry],
    *,
    epoch: Epoch | int,
    compressor: Compressor,
    store: BlobStore,
    workers: int | None = None,
    preserve_metadata: bool = False,
    progress: Progress = NO_PROGRESS,
    description: str = "layer",
    annotations: Mapping[str, str] | None = None,
) -> Layer:
    """Write the canonical tar of ``entries``, compressed, into ``store``; return the :class:`Layer`.

    The bytes depend only on the entries, ``epoch``, ``compressor`` and ``preserve_metadata``
    (not on ``workers``, the host path, umask, TZ, locale or file-system order). ``annotations`` go
    on the layer's descriptor (the manifest carries them, as zstd:chunked's table-of-contents
    annotations are carried); they do not touch the blob, so its digest and diff_id stay the same.
    """
    seconds = epoch.seconds if isinstance(epoch, Epoch) else int(epoch)
    entries = list(entries)
    total = tar_size(entries, seconds, preserve_metadata=preserve_metadata)
    with progress.task(f"compressing layer {description}", total) as task:
        digest, size, diff_id = _compress(
            lambda sink: write_tar(entries, seconds, sink, preserve_metadata=preserve_metadata),  # type: ignore[arg-type]
            compressor=compressor,
            store=store,
            workers=workers,
            advance=task,
            what=f"{description} blob",
        )
        task.note(_compressed_note(size, compressor))
    descriptor = Descriptor(oci_layer_type(compressor.algorithm), digest, size, annotations or {})
    return Layer(descriptor, diff_id, store.path(digest))


def layer_from_tar(
    tar_path: Path,
    *,
    compressor: Compressor,
    store: BlobStore,
    workers: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> Layer:
    """Compress an existing uncompressed tar as it is (no re-canonicalisation) into a layer."""

    def copy(sink: _TarSink) -> None:
        with tar_path.open("rb") as f:
            while chunk := f.read(CHUNK):
                sink.write(chunk)

    with progress.task(f"compressing {tar_path.name}", tar_path.stat().st_size) as task:
        digest, size, diff_id = _compress(
            copy, compressor=compressor, store=store, workers=workers, advance=task, what=f"layer from {tar_path}"
        )
        task.note(_compressed_note(size, compressor))
    return Layer(Descriptor(oci_layer_type(compressor.algorithm), digest, size), diff_id, store.path(digest))


def layer_from_blob(store: BlobStore, descriptor: Descriptor, diff_id: Digest) -> Layer:
    """An existing blob (e.g. a base layer) carried as it is; it must already be in ``store``."""
    path = store.path(descriptor.digest)
    if not path.is_file():
        raise OCIError(f"layer {descriptor.digest} is not in {store.dir}", hint="pull or copy the base first")
    return Layer(descriptor, diff_id, path)


def tar_diff_id(entries: Iterable[LayerEntry], *, epoch: Epoch | int, preserve_metadata: bool = False) -> Digest:
    """The diff_id :func:`write_layer` would give ``entries``, without compressing (for checking a cache).

    Writing the canonical tar into a hasher costs reading the entries' contents once; compression,
    the expensive part of a layer, is skipped.
    """
    seconds = epoch.seconds if isinstance(epoch, Epoch) else int(epoch)
    sink = _TarSink()
    write_tar(list(entries), seconds, sink, preserve_metadata=preserve_metadata)  # type: ignore[arg-type]
    return sink.diff_id


def diff_id_of(layer: Layer) -> Digest:
    """Recompute the diff_id by decompressing the blob (used by validation)."""
    h = hashlib.sha256()
    try:
        with layer.open_uncompressed() as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except DECOMPRESS_ERRORS as e:
        raise OCIError(
            f"layer {layer.digest}: decompressing {layer.path} failed: {e}",
            hint="the blob is truncated or corrupt; fetch the image again",
        ) from e
    return Digest(h.hexdigest())
