"""The third-party layers of a target, reused without installing anything when their inputs are unchanged.

Writing a target's wheel layers needs the wheels installed into a staging tree, their byte-code
compiled and the tree removed again; for a one-line change of the project's own code none of that
can change those layers. So once they are written, the layer groups (which distributions went
into which layer, and their installed sizes) and the layers' descriptors are remembered under one
key, the sha256 of every input that decides them (:func:`dependency_key`): the third-party wheels'
file names and sha256, the target's Python version and platform, where the base keeps Python, the
byte-code mode and the compiling interpreter, the layer policy and budget, the compressor, the
dependency mtime, the tar format, uv's and repro-build's versions, and a digest of repro-build's own
source files (two installs of one version from different commits must not share an entry).

The entry lives at ``<cache>/layers/<key>.json`` beside the per-layer entries of
:class:`~reprobuild.image.buildcache.LayerCache`. Its layers cannot be re-derived without installing
the wheels again (which is the cost it saves), so, like the base facts, the entry is sealed with an
HMAC under the machine's cache key, kept outside the cache (:mod:`reprobuild.cachekey`), which
covers the key and everything the entry says. An entry that does not verify, or whose blob does
not hash to the digest it names, is evicted with a warning and the layers are built the full way;
it is never used and never fatal. ``verify`` does not read it (``use_cache=False``).

The entry also records each third-party wheel's licence (what the SBOMs say), so a build that reuses
it needs no wheel file at all. With a registry cache in its sealed mode
(:mod:`reprobuild.image.registrycache`) the entry is shared as ``deps-<key>``: a machine without a local
entry takes the registry's (its seal verified there, its blobs checked by digest) and seals it locally.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprobuild import __version__
from reprobuild.cache import cache_root
from reprobuild.cachekey import UnsealedEntry, read_sealed, write_sealed
from reprobuild.config import LayerPolicy, Target
from reprobuild.distribution import code_digest
from reprobuild.errors import ReproBuildError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.image.buildcache import LAYER_FORMAT
from reprobuild.image.interpreter import Interpreter
from reprobuild.image.plan import LayerGroup
from reprobuild.image.pyenv import ImagePaths
from reprobuild.image.wheels import WheelPin
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest
from reprobuild.oci.layer import Layer
from reprobuild.oci.values import Descriptor
from reprobuild.uvbin import uv_version

if TYPE_CHECKING:
    from reprobuild.image.registrycache import RegistryCache

log = logging.getLogger(__name__)

#: The group kinds an entry holds: the third-party layers (the project, app and data-file layers are
#: rebuilt, or found by their own content, on every build).
DEPENDENCY_KINDS = ("wheel", "wheels")


@dataclass(frozen=True)
class DependencyLayers:
    """The third-party layer groups of a target, bottom first, each with its written layer."""

    groups: tuple[LayerGroup, ...]
    layers: tuple[Layer, ...]
    paths: frozenset[str]  # every in-image path the layers hold
    #: Each third-party wheel's licence as its METADATA declares it (for the SBOMs), by the wheel's sha256;
    #: ``None`` for an entry written before licences were recorded (the wheels are then needed).
    licenses: Mapping[str, str | None] | None = None

    def by_group(self) -> dict[LayerGroup, Layer]:
        return dict(zip(self.groups, self.layers, strict=True))


def dependency_key(
    wheels: Iterable[WheelPin],
    *,
    target: Target,
    paths: ImagePaths,
    interpreter: Interpreter,
    policy: LayerPolicy,
    base_layers: int,
    has_project: bool,
    compressor: dict[str, Any],
    media_type: str,
    mtime: int,
) -> str:
    """The sha256 of everything that decides the third-party layer groups and their bytes."""
    payload = {
        "kind": "dependency-layers",
        "format": LAYER_FORMAT,
        "repro-build": __version__,
        "repro-build-code": code_digest(),
        "uv": uv_version(),
        "wheels": sorted([w.name, w.filename, w.sha256] for w in wheels),
        "platform": target.uv_platform_args,
        "paths": [paths.interpreter, paths.site_packages, paths.bin_dir],
        "bytecode": target.bytecode,
        "compiler": interpreter.to_dict() if target.bytecode == "unchecked-hash" else None,
        "layers": {"budget": policy.budget, "split": list(policy.split), "threshold_mb": policy.threshold_mb},
        "base_layers": base_layers,
        "project": has_project,
        "compressor": compressor,
        "media_type": media_type,
        "mtime": mtime,
    }
    return hashlib.sha256(canonical_json_bytes(payload)).hexdigest()


class DependencyCache:
    """``<cache>/layers/<key>.json`` entries sealed with the cache key; see the module docstring."""

    def __init__(self, root: Path | None = None, *, remote: RegistryCache | None = None) -> None:
        base = root or cache_root()
        self.index = base / "layers"
        self.store = BlobStore(base)
        self.remote = remote  # shared through a registry in its sealed mode (image/registrycache.py)

    def _evict(self, key: str, why: str) -> None:
        """Remove the entry's record; a corrupt blob is the store's to remove (:meth:`BlobStore.verified`),
        never one that hashes to its name or another process has just replaced with a good copy."""
        log.warning("warning: layer cache entry %s is not what its inputs give (%s); rebuilding it", key[:12], why)
        (self.index / f"{key}.json").unlink(missing_ok=True)

    def get(self, key: str) -> DependencyLayers | None:
        """The entry for ``key`` if it is sealed by this machine's key and every blob is intact; else ``None``.

        Without a local entry, the registry cache's ``deps-<key>`` (sealed mode: its seal binds it to
        ``key``) is taken in, its blobs checked by digest, and sealed locally; a local hit is shared.
        """
        found = self._get(key)
        if found is not None:
            self._share(key, found)
            return found
        if self.remote is None or (self.index / f"{key}.json").is_file():
            return None
        entry = self.remote.get("deps", key, self.store)
        if entry is None:
            return None
        if entry.payload.get("key") != key:
            log.warning("warning: registry cache entry deps-%s names another key; building the layers", key[:12])
            return None
        self._write(key, dict(entry.payload))
        return self._get(key)

    def _get(self, key: str) -> DependencyLayers | None:
        try:
            payload = read_sealed(self.index / f"{key}.json", key=key)
        except UnsealedEntry as e:
            self._evict(key, str(e))
            return None
        if payload is None:
            return None
        try:
            groups, layers = [], []
            for item in payload["groups"]:
                kind = str(item["kind"])
                if kind not in DEPENDENCY_KINDS:
                    raise ValueError(kind)
                groups.append(LayerGroup(kind, tuple(str(d) for d in item["distributions"]), int(item["size"])))  # type: ignore[arg-type]
                layer = item["layer"]
                digest = Digest.parse(str(layer["digest"]))
                descriptor = Descriptor(str(layer["media_type"]), digest, int(layer["size"]))
                layers.append(Layer(descriptor, Digest.parse(str(layer["diff_id"])), self.store.path(digest)))
            paths = frozenset(str(p) for p in payload["paths"])
            recorded = payload.get("licenses")
            licenses = (
                {str(sha): (None if lic is None else str(lic)) for sha, lic in recorded.items()}
                if isinstance(recorded, dict)
                else None
            )
        except (KeyError, TypeError, ValueError, ReproBuildError):
            self._evict(key, "malformed entry")
            return None
        for layer in layers:
            if not layer.path.is_file():
                self._evict(key, f"blob {layer.digest} is missing")
                return None
            if self.store.verified(layer.digest, size=layer.size) is None:  # removes it if its bytes are wrong
                self._evict(key, f"blob {layer.digest} is corrupt or not the {layer.size} bytes recorded")
                return None
        return DependencyLayers(tuple(groups), tuple(layers), paths, licenses)

    def put(
        self,
        key: str,
        groups: Sequence[LayerGroup],
        layers: Sequence[Layer],
        paths: Iterable[str],
        licenses: Mapping[str, str | None],
    ) -> None:
        """Remember ``groups`` and their ``layers`` (their blobs are copied into the cache's store) and the
        wheels' ``licenses``; share them through the registry cache, if any."""
        items: list[dict[str, Any]] = []
        for group, layer in zip(groups, layers, strict=True):
            with layer.path.open("rb") as blob:
                self.store.copy_from(blob, expected=layer.digest, size=layer.size, what="layer cache")
            items.append(
                {
                    "distributions": list(group.distributions),
                    "kind": group.kind,
                    "layer": {
                        "diff_id": str(layer.diff_id),
                        "digest": str(layer.digest),
                        "media_type": layer.media_type,
                        "size": layer.size,
                    },
                    "size": group.size,
                }
            )
        payload = {"groups": items, "key": key, "licenses": dict(sorted(licenses.items())), "paths": sorted(set(paths))}
        self._write(key, payload)
        if self.remote is not None:
            found = self._get(key)
            if found is not None:
                self._share(key, found)

    def _write(self, key: str, payload: dict[str, Any]) -> None:
        write_sealed(self.index / f"{key}.json", payload)

    def _share(self, key: str, found: DependencyLayers) -> None:
        """Push the (verified) local entry ``found`` of ``key`` and its blobs as the registry cache's ``deps-<key>``."""
        if self.remote is None or found.licenses is None:
            return
        try:
            payload = read_sealed(self.index / f"{key}.json", key=key)
        except UnsealedEntry:
            return  # replaced since it was verified: shared by whoever wrote it, if anyone
        if payload is not None:
            self.remote.put("deps", key, payload, [(layer.descriptor, layer.path) for layer in found.layers])
