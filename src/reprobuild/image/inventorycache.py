"""The base's package inventory for the SBOMs, remembered per base like the base facts.

Reading it (:func:`reprobuild.attest.sbom.base_inventory`) decompresses every base layer and parses dpkg's
database and each package's copyright file: about 0.7 s of CPU for Debian bookworm's base, on every build,
for an answer that depends only on the base's layers (pinned by its manifest digest), the base lock it was
built from (the ``.deb`` hashes) and the code that reads them. So the answer is kept at
``<cache>/baseinfo/inventory-<key>.json``, ``key`` the sha256 of those inputs (repro-build's version and a
digest of its own source files stand for the code).

What the SBOMs say cannot be checked without reading the base again, so, like the base facts
(:func:`reprobuild.image.buildcache.cached_base_info`), an entry is used only when its HMAC under the
machine's cache key (:mod:`reprobuild.cachekey`, kept outside the cache) covers the key and everything it
says; anything else is evicted with a warning and the base read anew. ``verify`` reads the base every
time (``use_cache=False``).

With a registry cache in its sealed mode (:mod:`reprobuild.image.registrycache`) the entry is shared as
``inventory-<key>``: a machine without a local entry takes the registry's (its seal under the fleet
secret verified there, for this key) and seals it locally, so a build whose layers all come from the
registry reads no base layer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprobuild import __version__
from reprobuild.cache import cache_root
from reprobuild.cachekey import read_sealed, write_sealed
from reprobuild.distribution import code_digest
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.image import Image

if TYPE_CHECKING:  # the SBOM modules load when a build reads the inventory, not with the CLI
    from reprobuild.attest.inventory import BaseInventory
    from reprobuild.image.registrycache import RegistryCache

log = logging.getLogger(__name__)


def inventory_key(image: Image, base_lock: Path | None) -> str:
    """The sha256 of what the inventory of ``image`` depends on (see the module docstring)."""
    try:
        lock = hashlib.sha256(base_lock.read_bytes()).hexdigest() if base_lock is not None else None
    except OSError:
        lock = "unreadable"  # read_lock gives None for it: no .deb hashes
    payload = {
        "kind": "base-inventory",
        "repro-build": __version__,
        "repro-build-code": code_digest(),
        "base": str(image.digest),
        "lock": lock,
    }
    return hashlib.sha256(canonical_json_bytes(payload)).hexdigest()


def _to_json(key: str, inventory: BaseInventory) -> dict[str, Any]:
    return {
        "key": key,
        "os": dataclasses.asdict(inventory.os) if inventory.os else None,
        "packages": [dataclasses.asdict(p) for p in inventory.packages],
    }


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def _from_json(payload: dict[str, Any]) -> BaseInventory:
    from reprobuild.attest.inventory import BaseInventory, DebPackage, OsInfo

    os_info = payload["os"]
    return BaseInventory(
        OsInfo(str(os_info["id"]), _optional(os_info["version_codename"]), _optional(os_info["pretty_name"]))
        if os_info is not None
        else None,
        tuple(
            DebPackage(
                str(p["name"]),
                str(p["version"]),
                str(p["architecture"]),
                _optional(p["source"]),
                _optional(p["license"]),
                _optional(p["sha256"]),
                _optional(p["filename"]),
            )
            for p in payload["packages"]
        ),
    )


def _read(path: Path, key: str) -> BaseInventory | None:
    try:
        payload = read_sealed(path, key=key)
        return None if payload is None else _from_json(payload)
    except (KeyError, TypeError, ValueError):  # UnsealedEntry is a ValueError
        log.warning("warning: base inventory cache entry %s is not sealed by this machine; reading the base", key[:12])
        path.unlink(missing_ok=True)
        return None


def cached_base_inventory(
    image: Image,
    base_lock: Path | None,
    *,
    root: Path | None = None,
    use_cache: bool = True,
    remote: RegistryCache | None = None,
) -> BaseInventory:
    """:func:`~reprobuild.attest.sbom.base_inventory` of ``image``, remembered (see the module docstring)."""
    from reprobuild.attest.sbom import base_inventory

    if not use_cache:
        return base_inventory(image, base_lock)
    key = inventory_key(image, base_lock)
    path = (root or cache_root()) / "baseinfo" / f"inventory-{key}.json"
    found = _read(path, key)
    if found is None and remote is not None:
        found = _shared(remote, key, root)
        if found is not None:
            _write(path, key, found)
            return found
    if found is None:
        found = base_inventory(image, base_lock)
        _write(path, key, found)
    if remote is not None:
        remote.put("inventory", key, _to_json(key, found), [])
    return found


def _write(path: Path, key: str, inventory: BaseInventory) -> None:
    write_sealed(path, _to_json(key, inventory))


def _shared(remote: RegistryCache, key: str, root: Path | None) -> BaseInventory | None:
    """The registry cache's entry for ``key`` (sealed mode only; ``None`` when absent or malformed)."""
    entry = remote.get("inventory", key, BlobStore(root or cache_root()))
    if entry is None:
        return None
    try:
        if entry.payload["key"] != key:
            raise ValueError("another key")
        return _from_json(dict(entry.payload))
    except (KeyError, TypeError, ValueError) as e:
        log.warning("warning: registry cache entry inventory-%s is malformed (%s); reading the base", key[:12], e)
        return None
