"""Caches that make repeated image builds fast without being trusted.

Anything under the cache directory may have been rewritten by someone else (a cache restored from CI,
a shared volume), so no entry is trusted because of a hash stored beside it:

``<cache>/baseinfo/<manifest hex>.json``
    what :func:`inspect_base` found in a base, keyed by the base's manifest digest (the base itself is
    verified on every use). The facts can only be re-derived by inspecting the base again, so the
    entry is sealed with an HMAC under a key kept outside the cache (:mod:`reprobuild.cachekey`)
    that covers the facts and the base digest; an entry that does not verify is inspected anew.
``<cache>/layers/<key>.json`` + ``<cache>/blobs``
    a written layer, keyed by the sha256 of everything that decides its bytes: each entry's in-image
    path, mode and content sha256, the epoch, the compressor's description and the tar format version.
    Before reuse the diff_id is re-derived from the inputs (the canonical tar, hashed without
    compressing) and the blob must hash to its digest and decompress to that diff_id.
``<cache>/layers/<key>.json`` with an ``hmac``
    a target's third-party layers as a whole, found by their inputs without installing a wheel
    (:mod:`reprobuild.image.depcache`); sealed like the base facts.

``verify`` uses none of these caches.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprobuild.cache import cache_root
from reprobuild.cachekey import UnsealedEntry, read_sealed, write_sealed
from reprobuild.errors import ReproBuildError
from reprobuild.fsutil import atomic_write_text, canonical_json_bytes
from reprobuild.image.baseinfo import BaseInfo, inspect_base
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest, sha256_file
from reprobuild.oci.image import Image
from reprobuild.oci.layer import Layer, diff_id_of, tar_diff_id
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Descriptor

if TYPE_CHECKING:
    from reprobuild.image.registrycache import RegistryCache

log = logging.getLogger(__name__)

#: Bump when the layer bytes for the same entries change (tar writer or entry rules), to retire old entries.
LAYER_FORMAT = 1


def _sealed(payload: dict[str, Any]) -> str:
    body = canonical_json_bytes(payload)
    return json.dumps({"payload": payload, "sha256": hashlib.sha256(body).hexdigest()}, sort_keys=True)


def _unseal(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        payload = data["payload"]
        if hashlib.sha256(canonical_json_bytes(payload)).hexdigest() != data["sha256"]:
            return None
        return dict(payload)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cached_base_info(
    image: Image,
    *,
    name: str,
    root: Path | None = None,
    use_cache: bool = True,
    remote: RegistryCache | None = None,
) -> BaseInfo:
    """:func:`inspect_base`, remembered per base manifest digest in an entry sealed with the cache key.

    The facts cannot be checked without inspecting the base again, so an entry is used only when its
    HMAC (:mod:`reprobuild.cachekey`, a key kept outside the cache) covers both the facts and this
    base's manifest digest; anything else is evicted and the base inspected anew. Without a local
    entry, the registry cache's ``facts-<manifest hex>`` entry (``remote``, sealed mode only: its seal
    binds it to this digest) is taken in and sealed locally. ``use_cache=False`` (``verify``) always
    inspects.
    """
    path = (root or cache_root()) / "baseinfo" / f"{image.digest.hex}.json"
    if use_cache:
        info = _read_base_info(path, image)
        if info is not None:
            if remote is not None:
                remote.put("facts", image.digest.hex, _facts_payload(image, info), [])
            return info
        if remote is not None:
            entry = remote.get("facts", image.digest.hex, BlobStore(root or cache_root()))
            info = _facts(entry.payload, image) if entry is not None else None
            if info is not None:
                _write_base_info(path, image, info)
                return info
    info = inspect_base(image.layers, image.config, name=name)
    _write_base_info(path, image, info)
    if remote is not None and use_cache:
        remote.put("facts", image.digest.hex, _facts_payload(image, info), [])
    return info


def _facts_payload(image: Image, info: BaseInfo) -> dict[str, Any]:
    return {
        "base": str(image.digest),
        "glibc": list(info.glibc) if info.glibc else None,
        "interpreter": info.interpreter,
        "os_release": dict(info.os_release),
        "python_version": info.python_version,
        "site_packages": info.site_packages,
    }


def _write_base_info(path: Path, image: Image, info: BaseInfo) -> None:
    write_sealed(path, _facts_payload(image, info))


def _facts(payload: Any, image: Image) -> BaseInfo | None:
    """The facts ``payload`` records for ``image``; ``None`` when it is malformed or names another base."""
    try:
        if payload["base"] != str(image.digest):
            return None
        glibc = payload["glibc"]
        return BaseInfo(
            str(payload["interpreter"]),
            str(payload["python_version"]),
            str(payload["site_packages"]),
            (int(glibc[0]), int(glibc[1])) if glibc else None,
            {str(k): str(v) for k, v in payload["os_release"].items()},
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _read_base_info(path: Path, image: Image) -> BaseInfo | None:
    try:
        payload = read_sealed(path, base=str(image.digest))
        if payload is None:
            return None
        info = _facts(payload, image)
        if info is None:
            raise UnsealedEntry("malformed facts")
        return info
    except UnsealedEntry:
        log.warning("warning: base facts cache entry %s is not sealed by this machine; inspecting anew", path.name[:12])
        path.unlink(missing_ok=True)
        return None


def _content_sha(entry: LayerEntry) -> str:
    content = entry.content
    if content is None:
        return ""
    if isinstance(content, bytes):
        return hashlib.sha256(content).hexdigest()
    if isinstance(content, Path):
        return sha256_file(content)[0].hex
    raise TypeError(f"layer entry {entry.path}: cannot fingerprint {type(content).__name__} content")


def layer_key(entries: list[LayerEntry], *, epoch: int, compressor: dict[str, Any]) -> str:
    """The sha256 naming a layer's bytes before they are written (see the module docstring)."""
    rows = [[e.path, e.kind, e.mode, e.target or "", _content_sha(e)] for e in sorted(entries, key=lambda e: e.path)]
    payload = {"compressor": compressor, "entries": rows, "epoch": epoch, "format": LAYER_FORMAT}
    return hashlib.sha256(canonical_json_bytes(payload)).hexdigest()


class LayerCache:
    """Previously written layers, reused only after their content is re-derived from the inputs.

    An entry maps a layer key to a blob. Everything in the cache directory may have been rewritten
    (a cache restored from CI, a shared volume), so the self-hash of an entry proves nothing. Before
    a blob is reused, :meth:`get` recomputes the diff_id the layer's *inputs* give (the canonical tar
    of the entries, hashed without compressing) and checks that the cached blob hashes to its digest
    and decompresses to exactly that tar. A mismatch evicts the entry with a warning and the layer is
    written anew; it is never used and never fatal. What is left to the cache is only the encoding of
    the compressed bytes (see docs/explanation/threat-model.md).
    """

    def __init__(self, root: Path | None = None, *, remote: RegistryCache | None = None) -> None:
        base = root or cache_root()
        self.index = base / "layers"
        self.store = BlobStore(base)
        self.remote = remote  # layers shared through a registry (image/registrycache.py)

    def _evict(self, key: str, why: str) -> None:
        """Remove the entry's record. Its blob is the store's to remove (:meth:`BlobStore.verified`), and
        only when its bytes do not hash to its name: one that does may be another entry's or another
        build's, and a blob this process found corrupt may since have been replaced by a good copy."""
        log.warning("warning: layer cache entry %s is not what its inputs give (%s); rebuilding it", key[:12], why)
        (self.index / f"{key}.json").unlink(missing_ok=True)

    def get(
        self,
        key: str,
        *,
        entries: list[LayerEntry],
        epoch: int,
        media_type: str,
        preserve_metadata: bool = False,
    ) -> Layer | None:
        """The cached layer for ``key`` if its blob is exactly the tar of ``entries``; else ``None``.

        ``media_type`` is the one the build's compressor gives: an entry of another type is evicted.
        Without a local entry, the registry cache's (``remote``) is taken in and checked the same way;
        a local hit is shared with the registry cache.
        """
        args: dict[str, Any] = {
            "entries": entries,
            "epoch": epoch,
            "media_type": media_type,
            "preserve_metadata": preserve_metadata,
        }
        if not (self.index / f"{key}.json").is_file() and self.remote is not None:
            fetched = self.remote.fetch_layer(key, self.store, media_type)
            if fetched is None:
                return None
            self._record(key, fetched)
            layer = self._get(key, **args)
            if layer is None:
                log.warning("warning: registry cache %s: entry layer-%s was not used", self.remote.where, key[:12])
                self.remote.used.remove(f"layer-{key}")
            return layer
        layer = self._get(key, **args)
        if layer is not None and self.remote is not None:
            self.remote.push_layer(key, layer)
        return layer

    def _get(
        self, key: str, *, entries: list[LayerEntry], epoch: int, media_type: str, preserve_metadata: bool
    ) -> Layer | None:
        payload = _unseal(self.index / f"{key}.json")
        if payload is None:
            return None
        try:
            digest = Digest.parse(str(payload["digest"]))
            diff_id = Digest.parse(str(payload["diff_id"]))
            size = int(payload["size"])
            recorded_type = str(payload["media_type"])
        except (KeyError, TypeError, ValueError, ReproBuildError):
            self._evict(key, "malformed entry")
            return None
        if recorded_type != media_type:
            self._evict(key, f"media type {recorded_type}, this build writes {media_type}")
            return None
        path = self.store.path(digest)
        if not path.is_file():
            return None
        expected = tar_diff_id(entries, epoch=epoch, preserve_metadata=preserve_metadata)
        if diff_id != expected:
            self._evict(key, f"it records diff_id {diff_id}, the inputs give {expected}")
            return None
        if self.store.verified(digest, size=size) is None:  # removes the blob if its bytes are not its name's
            self._evict(key, f"blob {digest} is corrupt or not the {size} bytes recorded")
            return None
        layer = Layer(Descriptor(media_type, digest, size), diff_id, path)
        try:
            actual = diff_id_of(layer) if layer.is_layer else None
        except FileNotFoundError:
            return None  # removed meanwhile by another process that found it corrupt
        except ReproBuildError:
            actual = None
        if actual != expected:
            self._evict(key, f"blob {digest} decompresses to {actual}, the inputs give {expected}")
            return None
        return layer

    def put(self, key: str, layer: Layer) -> None:
        """Remember ``layer`` under ``key`` (and share it through the registry cache, if any)."""
        with layer.path.open("rb") as blob:
            self.store.copy_from(blob, expected=layer.digest, size=layer.size, what="layer cache")
        self._record(key, layer)
        if self.remote is not None:
            self.remote.push_layer(key, layer)

    def _record(self, key: str, layer: Layer) -> None:
        atomic_write_text(
            self.index / f"{key}.json",
            _sealed(
                {
                    "diff_id": str(layer.diff_id),
                    "digest": str(layer.digest),
                    "media_type": layer.media_type,
                    "size": layer.size,
                }
            ),
        )
