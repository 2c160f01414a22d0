"""The cache of the embedded Debian base and its standard-library byte-code: sealed records naming blobs.

The bytes live in the cache's one blob store (``<cache>/blobs/sha256/<hex>``,
:func:`reprobuild.oci.blobstore.cache_store`) beside the ``.deb`` files, wheels and layers; what this
module keeps under ``<cache>/bases/`` is one small JSON record per entry, named by the key of the
inputs that decide the entry's bytes (the key is computed by the reader from *its* inputs, never read
from the record):

``bases/<key>.json``
    a Debian base built from a base lock (:mod:`reprobuild.image.debianbase`): the lock's sha256 and the
    image's manifest digest and size. The manifest, its config and its one layer are blobs of the store.
``bases/stdlib-<key>.json``
    the standard-library byte-code layer on top of such a base (:mod:`reprobuild.image.stdlibbytecode`):
    the layer's descriptor and diff_id and how many pyc files it holds.

Neither can be checked against its inputs without redoing most of the work (reading every ``.deb``,
compiling the standard library), so a record is a sealed entry (:func:`reprobuild.cachekey.write_sealed`,
read back by :func:`~reprobuild.cachekey.read_sealed`): ``{"hmac": ..., "payload": ...}`` where the
HMAC-SHA256 covers the canonical JSON of the whole payload (its kind, format, key, and every digest
and size) under the machine's cache key kept outside the cache (:mod:`reprobuild.cachekey`). On use,
a record is read as data before anything in it is believed: at most :data:`MAX_RECORD_BYTES`, no
symlink, exactly the fields of its kind with their types, every digest ``sha256:`` and 64 lowercase
hex digits, its key and lock the reader's own; then the seal must verify; then every blob it names,
directly or through the manifest, is re-hashed against its digest and size as it is read (a blob
whose bytes do not hash to its name is removed from the store, :meth:`BlobStore.verified
<reprobuild.oci.blobstore.BlobStore.verified>`). Only digests are taken from a record: the store
turns a digest into a path, so a record can name no file. Anything else evicts the record with one
``warning:`` line and the entry is built again; it is never used and never fatal.

Several processes may fill an entry at once: blobs enter the store under their digest only once
verified and a rename only replaces a blob with the same bytes, and a record is written to a
temporary file and renamed into place, after its blobs; two writers of one key write the same record.

Caches of earlier versions kept each entry as a directory of its own (``bases/<key>/oci/`` with
``sealed.json``, ``bases/stdlib-<key>/layer``); those directories are ignored: never read, written or
removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from reprobuild.cache import cache_root
from reprobuild.cachekey import UnsealedEntry, read_sealed, write_sealed
from reprobuild.errors import BaseImageError, DigestMismatchError, OCIError, ReproBuildError
from reprobuild.oci.blobstore import BlobStore, cache_store
from reprobuild.oci.digest import SHA256_HEX_RE, Digest
from reprobuild.oci.image import Image
from reprobuild.oci.layer import Layer
from reprobuild.oci.layout import load_manifest
from reprobuild.oci.mediatypes import MANIFEST_TYPES, is_layer
from reprobuild.oci.values import Descriptor

log = logging.getLogger(__name__)

#: The directory of the records under the cache root.
RECORDS = "bases"
#: A record is a few hundred bytes; a larger file is not one.
MAX_RECORD_BYTES = 16 << 10
#: Bump when a record's fields change meaning; a record of another format is not used.
FORMAT = 1
#: The payload kinds (domain separation: one cache key seals records of several kinds).
BASE_KIND = "debian-base"
STDLIB_KIND = "debian-stdlib-bytecode"
#: The largest size a record may give a blob or a count (a sanity bound, not a policy).
_MAX_SIZE = 1 << 40


class RecordError(ValueError):
    """A record (or a shared entry's payload) that is not what its schema allows; the message says why."""


# ------------------------------------------------------------------ reading fields as data


def _object(value: object, fields: frozenset[str], where: str) -> Mapping[str, object]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise RecordError(f"{where} is not a JSON object")
    if set(value) != fields:
        extra, missing = sorted(set(value) - fields), sorted(fields - set(value))
        raise RecordError(f"{where}: unexpected fields {extra}, missing fields {missing}")
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise RecordError(f"{where} is not a string")
    return value


def _hex64(value: object, where: str) -> str:
    text = _string(value, where)
    if not SHA256_HEX_RE.match(text):
        raise RecordError(f"{where} is not 64 lowercase hex digits")
    return text


def _digest(value: object, where: str) -> Digest:
    try:
        return Digest.parse(_string(value, where), origin=where)
    except OCIError as e:
        raise RecordError(e.message) from e


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SIZE:
        raise RecordError(f"{where} is not a non-negative integer")
    return value


def _exactly(value: object, expected: object, where: str) -> None:
    if value != expected or type(value) is not type(expected):
        raise RecordError(f"{where} is {value!r}, not {expected!r}")


_LAYER_FIELDS = frozenset({"diff_id", "digest", "media_type", "size"})


def layer_fields(value: object, where: str) -> tuple[Descriptor, Digest]:
    """The descriptor and diff_id a record's (or a shared entry's) ``layer`` object gives; a layer type only."""
    obj = _object(value, _LAYER_FIELDS, where)
    media_type = _string(obj["media_type"], f"{where}.media_type")
    if not is_layer(media_type):
        raise RecordError(f"{where}.media_type {media_type!r} is not a layer media type")
    descriptor = Descriptor(media_type, _digest(obj["digest"], f"{where}.digest"), _count(obj["size"], f"{where}.size"))
    return descriptor, _digest(obj["diff_id"], f"{where}.diff_id")


def layer_json(layer: Layer) -> dict[str, object]:
    """The ``layer`` object of a record: what :func:`layer_fields` reads back."""
    return {
        "diff_id": str(layer.diff_id),
        "digest": str(layer.digest),
        "media_type": layer.media_type,
        "size": layer.size,
    }


# ------------------------------------------------------------------ sealed records


def _read_record(path: Path, kind: str, key: str) -> Mapping[str, object] | None:
    """The payload of the record at ``path`` once its shape, kind, key and seal check out; ``None`` if absent
    (:func:`reprobuild.cachekey.read_sealed`, never through a link, at most :data:`MAX_RECORD_BYTES`).

    Raises :class:`RecordError` saying what is wrong with a record that is there.
    """
    try:
        return read_sealed(path, max_bytes=MAX_RECORD_BYTES, kind=kind, format=FORMAT, key=key)
    except UnsealedEntry as e:
        raise RecordError(str(e)) from e


def _write_record(path: Path, payload: Mapping[str, object]) -> bool:
    """Seal ``payload`` and write it at ``path`` (atomically); ``False`` when this machine has no cache key."""
    try:
        return write_sealed(path, payload)  # its directory too
    except (OSError, ReproBuildError) as e:
        detail = e.message if isinstance(e, ReproBuildError) else (e.strerror or str(e))
        raise BaseImageError(
            f"cannot write the cache record {path}: {detail}",
            hint=f"something other than repro-build is at that path; remove it (`rm -r {path}`) and build again",
        ) from e


def _evict(path: Path, what: str, problem: str, doing: str) -> None:
    log.warning("warning: the cached %s %s is not trusted (%s); %s", what, path.name, problem, doing)
    with contextlib.suppress(OSError):  # a directory (not a record this cache wrote): the next write says so
        path.unlink(missing_ok=True)


_READ_ERRORS = (RecordError, OSError, ReproBuildError)


# ------------------------------------------------------------------ the Debian base


def _layer_path(store: BlobStore) -> Callable[[Descriptor], Path]:
    def get(d: Descriptor) -> Path:
        path = store.verified(d.digest, size=d.size)
        if path is None:
            raise OCIError(f"layer blob {d.digest} is missing from the store or corrupt")
        return path

    return get


def _read_blob(store: BlobStore) -> Callable[[Digest, str], bytes]:
    def read(digest: Digest, what: str) -> bytes:
        try:
            return store.read_verified(digest, what=what)
        except DigestMismatchError:
            store.verified(digest)  # removes the blob whose bytes do not hash to its name
            raise
        except OSError as e:  # a directory, say: not a blob this store wrote, so not one it removes
            raise OCIError(f"{what}: blob {digest} is unreadable ({e.strerror or e})") from e

    return read


def _base_image(store: BlobStore, manifest: Descriptor) -> Image:
    """The one-layer image ``manifest`` names, every blob re-hashed against its digest and size as read."""
    artifact = load_manifest(_read_blob(store), _layer_path(store), manifest, what="the cached Debian base")
    if not isinstance(artifact, Image):
        raise RecordError(f"manifest {manifest.digest} is an index, not an image")
    if len(artifact.layers) != 1:
        raise RecordError(f"it has {len(artifact.layers)} layers, a Debian base has one")
    return artifact


_BASE_FIELDS = frozenset({"format", "key", "kind", "lock_sha256", "manifest"})
_MANIFEST_FIELDS = frozenset({"digest", "media_type", "size"})


class BaseCache:
    """``bases/<key>.json`` records of built Debian bases over the cache's blob store (module docstring)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root()
        self.store = cache_store(self.root)

    def record(self, key: str) -> Path:
        return self.root / RECORDS / f"{_hex64(key, 'key')}.json"

    def has(self, key: str) -> bool:
        """Whether a record (trusted or not) is there; :meth:`get` decides whether it is used."""
        return os.path.lexists(self.record(key))

    def get(self, key: str, lock_sha: str) -> Image | None:
        """The base the record of ``key`` names for the lock ``lock_sha``, verified; else ``None`` (evicted)."""
        path = self.record(key)
        try:
            payload = _read_record(path, BASE_KIND, key)
            if payload is None:
                return None
            _object(payload, _BASE_FIELDS, "payload")
            _exactly(payload["lock_sha256"], lock_sha, "payload.lock_sha256")
            manifest = _object(payload["manifest"], _MANIFEST_FIELDS, "payload.manifest")
            media_type = _string(manifest["media_type"], "payload.manifest.media_type")
            if media_type not in MANIFEST_TYPES:
                raise RecordError(f"payload.manifest.media_type {media_type!r} is not an image manifest type")
            descriptor = Descriptor(
                media_type,
                _digest(manifest["digest"], "payload.manifest.digest"),
                _count(manifest["size"], "payload.manifest.size"),
            )
            return _base_image(self.store, descriptor)
        except _READ_ERRORS as e:
            _evict(path, "Debian base", _problem(e), "building it again from the lock")
            return None

    def put(self, key: str, lock_sha: str, image: Image) -> Image:
        """Store ``image`` (a one-layer base whose layer blob may already be in the store) under ``key``.

        Returns the image as read back from the store (each blob verified), which is recorded only then;
        without a cache key nothing is recorded.
        """
        if len(image.layers) != 1:
            raise BaseImageError(f"the Debian base has {len(image.layers)} layers, not one")
        for layer in image.layers:
            _into_store(self.store, layer, "the Debian base layer")
        self.store.put_bytes(image.config_bytes, expected=image.config_digest, what="the Debian base's config")
        self.store.put_bytes(image.manifest_bytes, expected=image.digest, what="the Debian base's manifest")
        descriptor = Descriptor(image.media_type, image.digest, len(image.manifest_bytes))
        payload = {
            "format": FORMAT,
            "key": key,
            "kind": BASE_KIND,
            "lock_sha256": lock_sha,
            "manifest": {
                "digest": str(descriptor.digest),
                "media_type": descriptor.media_type,
                "size": descriptor.size,
            },
        }
        try:
            stored = _base_image(self.store, descriptor)
        except _READ_ERRORS as e:
            raise BaseImageError(
                f"the cached Debian base {image.digest} changed while it was written: {_problem(e)}",
                hint=f"another process is rewriting the cache {self.root}; build again",
            ) from e
        _write_record(self.record(key), payload)
        return stored


# ------------------------------------------------------------------ the standard-library byte-code layer


@dataclass(frozen=True)
class StdlibLayer:
    """The written standard-library byte-code layer and how many pyc files it holds."""

    layer: Layer
    files: int


_STDLIB_FIELDS = frozenset({"files", "format", "key", "kind", "layer"})


class StdlibCache:
    """``bases/stdlib-<key>.json`` records of standard-library byte-code layers (module docstring)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root()
        self.store = cache_store(self.root)

    def record(self, key: str) -> Path:
        return self.root / RECORDS / f"stdlib-{_hex64(key, 'key')}.json"

    def has(self, key: str) -> bool:
        """Whether a record (trusted or not) is there; :meth:`get` decides whether it is used."""
        return os.path.lexists(self.record(key))

    def get(self, key: str) -> StdlibLayer | None:
        """The layer the record of ``key`` names, its blob verified; else ``None`` (the record evicted)."""
        path = self.record(key)
        try:
            payload = _read_record(path, STDLIB_KIND, key)
            if payload is None:
                return None
            _object(payload, _STDLIB_FIELDS, "payload")
            files = _count(payload["files"], "payload.files")
            descriptor, diff_id = layer_fields(payload["layer"], "payload.layer")
            blob = self.store.verified(descriptor.digest, size=descriptor.size)
            if blob is None:
                raise RecordError(f"layer blob {descriptor.digest} is missing from the store or corrupt")
            return StdlibLayer(Layer(descriptor, diff_id, blob), files)
        except _READ_ERRORS as e:
            _evict(path, "standard-library byte-code", _problem(e), "compiling it again")
            return None

    def put(self, key: str, found: StdlibLayer) -> StdlibLayer:
        """Store ``found``'s blob (if it is not in the store yet) and record it under ``key``."""
        layer = found.layer
        blob = _into_store(self.store, layer, "the standard-library byte-code layer")
        payload = {"files": found.files, "format": FORMAT, "key": key, "kind": STDLIB_KIND, "layer": layer_json(layer)}
        _write_record(self.record(key), payload)
        return StdlibLayer(Layer(layer.descriptor, layer.diff_id, blob), found.files)


def _into_store(store: BlobStore, layer: Layer, what: str) -> Path:
    """``layer``'s blob in ``store``: already there when it was written there (it is verified when read back),
    else copied and verified (a blob of that name that does not verify is replaced)."""
    dest = store.path(layer.digest)
    if layer.path == dest or store.verified(layer.digest, size=layer.size) is not None:
        return dest
    return store.copy_file(layer.path, expected=layer.digest, size=layer.size, what=what)


def _problem(e: Exception) -> str:
    if isinstance(e, ReproBuildError):
        return e.message
    if isinstance(e, OSError):
        return f"it is unreadable ({e.strerror or e})"
    return str(e)
