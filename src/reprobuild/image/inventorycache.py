"""The SBOMs' inventory of a base (its Debian packages), remembered instead of read from the base again.

:func:`reprobuild.attest.inventory.read_base` reads the whole base (a 70 MB tar for the embedded Debian
base) to list its packages and licences: the largest step of a build whose layers all come from a
cache. The inventory depends only on the base's layers (named by its manifest digest), the base lock
it was built from (the ``.deb`` hashes) and the reading code, so it is keyed by the sha256 of the
manifest digest, the lock's sha256, repro-build's version and a digest of its source files.

Like the base facts it cannot be checked without reading the base again, so an entry is sealed: in
``<cache>/baseinfo/inventory-<key>.json`` with an HMAC under the machine's cache key
(:mod:`reprobuild.cachekey`), and in a registry cache's sealed mode as ``inventory-<key>``
(:mod:`reprobuild.image.registrycache`). An entry that does not verify or does not parse is evicted
with a warning and the base is read anew; ``verify`` reads no cache and always reads the base.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprobuild import __version__
from reprobuild.attest.inventory import BaseInventory, DebPackage, OsInfo, read_base
from reprobuild.cache import cache_root
from reprobuild.cachekey import seal, sealed_by_us
from reprobuild.distribution import code_digest
from reprobuild.fsutil import atomic_write_text, canonical_json_bytes
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.image import Image

if TYPE_CHECKING:
    from reprobuild.image.registrycache import RegistryCache

log = logging.getLogger(__name__)


def inventory_key(image: Image, lock_bytes: bytes | None) -> str:
    """The sha256 of everything the inventory of ``image`` depends on (module docstring)."""
    payload = {
        "base": str(image.digest),
        "kind": "base-inventory",
        "lock": hashlib.sha256(lock_bytes).hexdigest() if lock_bytes is not None else None,
        "repro-build": __version__,
        "repro-build-code": code_digest(),
    }
    return hashlib.sha256(canonical_json_bytes(payload)).hexdigest()


def to_payload(inventory: BaseInventory) -> dict[str, Any]:
    return {
        "os": dataclasses.asdict(inventory.os) if inventory.os is not None else None,
        "packages": [dataclasses.asdict(p) for p in inventory.packages],
    }


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def from_payload(payload: Any) -> BaseInventory | None:
    """The inventory ``payload`` records; ``None`` when it is malformed."""
    try:
        os = payload["os"]
        packages = tuple(
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
        )
        info = (
            OsInfo(str(os["id"]), _optional(os["version_codename"]), _optional(os["pretty_name"]))
            if os is not None
            else None
        )
    except (KeyError, TypeError, ValueError):
        return None
    return BaseInventory(info, packages)


def cached_base_inventory(
    image: Image,
    *,
    lock: Mapping[str, Any] | None,
    lock_bytes: bytes | None,
    remote: RegistryCache | None = None,
    root: Path | None = None,
) -> BaseInventory:
    """``read_base(image.layers, lock=lock)``, remembered locally and in the registry cache (module docstring)."""
    key = inventory_key(image, lock_bytes)
    path = (root or cache_root()) / "baseinfo" / f"inventory-{key}.json"
    found = _read(path)
    if found is None and remote is not None:
        entry = remote.get("inventory", key, BlobStore(root or cache_root()))
        found = from_payload(entry.payload) if entry is not None else None
        if found is not None:
            _write(path, found)
            return found
    if found is None:
        found = read_base(image.layers, lock=lock)
        _write(path, found)
    if remote is not None:
        remote.put("inventory", key, to_payload(found), [])
    return found


def _write(path: Path, inventory: BaseInventory) -> None:
    payload = to_payload(inventory)
    tag = seal(canonical_json_bytes(payload))
    if tag is not None:
        atomic_write_text(path, json.dumps({"hmac": tag, "payload": payload}, sort_keys=True))


def _read(path: Path) -> BaseInventory | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        data = None
    found = None
    try:
        if sealed_by_us(canonical_json_bytes(data["payload"]), data["hmac"]):
            found = from_payload(data["payload"])
    except (KeyError, TypeError, ValueError):
        pass
    if found is None:
        log.warning("warning: base inventory cache entry %s is not sealed by this machine; reading the base", path.name)
        path.unlink(missing_ok=True)
    return found
