"""The embedded Debian base for ``base = "debian:SUITE"`` targets, built from the project's base lock.

The image is the ``.deb`` files' layer and, unless the target's ``bytecode`` is ``"none"``, the standard
library's byte-code as Debian's maintainer scripts would write it, as a second layer on top
(:mod:`reprobuild.image.stdlibbytecode`, cached and sealed on its own).

The lock is ``repro-locks/base-<suite>-<arch>.json`` (``repro-build lock`` writes it with the Python locks).
A built base depends only on that lock (its epoch is the Release date), so it is cached and reused: its
manifest, config and layer in the cache's one blob store, and a sealed record ``<cache>/bases/<key>.json``
naming them (:mod:`reprobuild.image.basecache`), where the key is the sha256 of the lock's sha256 and the
compressor's description (a new compressor version writes other bytes, so it must not find the old
entry). Re-deriving the base from the lock costs most of building it (reading every ``.deb``), so the
record is sealed with an HMAC over the lock's sha256 and the manifest's digest under a key kept outside
the cache (:mod:`reprobuild.cachekey`). On reuse the record must be well-formed and its seal verify, the
manifest must be an image of exactly one layer, and every blob must hash to its digest; anything else is
evicted with a warning and the base is built again from the lock (never used, never fatal). ``verify``
passes ``use_cache=False`` and always builds the base from the lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprobuild.base.debian.fetch import DebCache
from reprobuild.base.debian.lock import BaseLock, check_inputs, default_lock_path
from reprobuild.config import Config, Target
from reprobuild.errors import ReproBuildError, StaleLockError
from reprobuild.image.basecache import BaseCache
from reprobuild.image.stdlibbytecode import with_stdlib_bytecode
from reprobuild.lock.baselock import base_inputs
from reprobuild.lockdir import RELOCK_HINT
from reprobuild.oci.compress import Compressor
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image, layers_from_manifest, parse_json_object
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.values import Descriptor

if TYPE_CHECKING:
    from reprobuild.image.registrycache import RegistryCache

log = logging.getLogger(__name__)


def base_lock_path(config: Config, target: Target) -> Path:
    assert target.base.suite is not None
    return default_lock_path(config.root, target.base.suite, target.arch)


def debian_base(
    config: Config,
    target: Target,
    staging: Path,
    *,
    offline: bool = False,
    mirror: str | None = None,
    use_cache: bool = True,
    progress: Progress = NO_PROGRESS,
) -> tuple[Image, dict[str, Any]]:
    """The base image of ``target`` (a :data:`reprobuild.image.base.DebianBuilder`).

    The ``.deb`` files come from the cache, else from ``mirror`` (``--mirror``), else the configured
    ``[tool.repro-build.debian] mirror``, else the mirror the lock records, else this machine's apt
    sources. Any of them gives the same base: every file is checked against the lock's sha256.
    ``use_cache=False`` builds it from the lock even when a sealed copy is cached (and caches the result).
    """
    path = base_lock_path(config, target)
    rel = path.relative_to(config.root).as_posix()
    if not path.is_file():
        raise StaleLockError(
            f"target {target.name!r} uses {target.base.text}, but {rel} does not exist",
            hint=f"{RELOCK_HINT} (it locks the Debian base too)",
        )
    try:
        lock = check_inputs(path, base_inputs(config, target.base.suite or "", target.arch))
    except StaleLockError as e:
        raise StaleLockError(e.message, hint=RELOCK_HINT) from e
    lock_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    record = {
        "lock": rel,
        "lock_sha256": f"sha256:{lock_sha}",
        "release_sha256": lock.release.get("sha256"),
        "snapshot": lock.snapshot,
        "suite": target.base.suite,
    }
    # What every engine loads; named here so the cache key and the build use the same compressor.
    compressor = Compressor.gzip()
    base = _base_layer(
        lock,
        lock_sha,
        compressor=compressor,
        mirror=mirror or config.debian.mirror,
        offline=offline,
        use_cache=use_cache,
        progress=progress,
    )
    if target.bytecode == "none":
        return base, record
    image = with_stdlib_bytecode(
        base,
        target,
        epoch=lock.release_epoch,
        compressor=compressor,
        staging=staging,
        use_cache=use_cache,
        progress=progress,
    )
    return image, record


def _base_layer(
    lock: BaseLock,
    lock_sha: str,
    *,
    compressor: Compressor,
    mirror: str | None,
    offline: bool,
    use_cache: bool,
    progress: Progress,
) -> Image:
    """The base of the ``.deb`` files alone (one layer): the sealed cache entry, else built from the lock."""
    cache = BaseCache()
    key = _cache_key(lock_sha, compressor)
    if use_cache:
        reused = cache.get(key, lock_sha)
        if reused is not None:
            return reused
    # Imported only to build one: a build that finds its base cached (most) does not pay for it.
    from reprobuild.base.debian.build import build_base

    built = build_base(
        lock,
        cache=DebCache(cache.root),
        store=cache.store,  # the layer is written straight into the cache's store, verified as written
        mirror=mirror,
        offline=offline,
        compressor=compressor,
        progress=progress,
    )
    return cache.put(key, lock_sha, built.image)


def _cache_key(lock_sha: str, compressor: Compressor) -> str:
    """The cache entry of a base: the lock and everything else its bytes depend on (the compressor)."""
    described = json.dumps(compressor.describe(), sort_keys=True)
    return hashlib.sha256(f"{lock_sha}\n{described}\n".encode()).hexdigest()


# -- the registry cache's ``base-<key>`` entries (image/registrycache.py, sealed mode only) ---------------


def _shared_key(config: Config, target: Target) -> tuple[str, str] | None:
    """(the cache key, the lock's sha256) of ``target``'s base lock; ``None`` without a lock."""
    try:
        lock_sha = hashlib.sha256(base_lock_path(config, target).read_bytes()).hexdigest()
    except OSError:
        return None
    return _cache_key(lock_sha, Compressor.gzip()), lock_sha


def import_shared_base(remote: RegistryCache, config: Config, target: Target) -> None:
    """Fill this machine's cached base of ``target`` from ``remote``'s ``base-<key>`` entry, when it has one.

    The entry's seal (checked by ``remote``) binds the manifest digest to the lock's key; every blob is
    checked against its digest as it arrives in the cache's store; the base is then recorded and sealed
    with this machine's cache key, and :func:`debian_base` checks it as it checks any cached base.
    """
    keys = _shared_key(config, target)
    if keys is None or not remote.shares("base"):
        return
    key, lock_sha = keys
    cache = BaseCache()
    if cache.has(key):
        return
    entry = remote.get("base", key, cache.store)
    if entry is None:
        return
    try:
        digest = Digest.parse(str(entry.payload["manifest_digest"]))
        data = str(entry.payload["manifest"]).encode()
        if Digest.of_bytes(data) != digest:
            raise ValueError(f"its manifest is not {digest}")
        obj = parse_json_object(data, "the shared base's manifest")
        config_desc = Descriptor.from_json(obj.get("config"), origin="the shared base's manifest config")
        config_bytes = cache.store.read_verified(config_desc.digest, what="the shared base's config")
        config_obj = parse_json_object(config_bytes, "the shared base's config")
        layers = layers_from_manifest(obj, config_obj, lambda d: cache.store.path(d.digest), what="the shared base")
        cache.put(key, lock_sha, Image(data, config_bytes, layers))
    except (KeyError, TypeError, ValueError, OSError, ReproBuildError) as e:
        message = e.message if isinstance(e, ReproBuildError) else str(e)
        log.warning("warning: registry cache entry base-%s is malformed (%s); building the base", key[:12], message)


def shared_base_image(config: Config, target: Target) -> Image | None:
    """This machine's cached, sealed Debian base of ``target`` (its one layer), if it has one."""
    keys = _shared_key(config, target)
    return None if keys is None else BaseCache().get(*keys)


def share_base(remote: RegistryCache, config: Config, target: Target) -> None:
    """Push the base built from ``target``'s lock (this machine's cached, sealed entry) as ``base-<key>``."""
    keys = _shared_key(config, target)
    if keys is None or not remote.shares("base"):
        return
    key, lock_sha = keys
    cache = BaseCache()
    image = cache.get(key, lock_sha)
    if image is None:
        return  # not built through the cache (or not sealed here): nothing trusted to share
    blobs = [(image.config_descriptor, cache.store.path(image.config_digest))]
    blobs += [(layer.descriptor, layer.path) for layer in image.layers]
    # The manifest travels in the sealed payload (a few hundred bytes), not as a blob of a manifest type,
    # which some registries refuse as an artifact's layer.
    payload = {"lock_sha256": lock_sha, "manifest": image.manifest_bytes.decode(), "manifest_digest": str(image.digest)}
    remote.put("base", key, payload, blobs)
