"""Built layers shared through an OCI registry (``image --cache REF``), for a fleet of machines.

Each layer the build writes is pushed to the repository ``REF`` as a small OCI artifact tagged
``layer-<key>``, where ``<key>`` is the layer-cache key (the sha256 of every input that decides the
layer's bytes, :func:`reprobuild.image.buildcache.layer_key`): a manifest whose config
(``application/vnd.repro-build.layer-cache.v1+json``) names the key and the diff_id, and whose one
layer is the compressed blob. Another machine, with an empty local cache, looks the tag up when its
local layer cache has no entry for that key, downloads the blob (the registry client checks it
against the manifest's digest) and hands it to the local layer cache, which uses it only after
re-deriving the diff_id from the layer's inputs and checking that the blob decompresses to exactly
that tar (:class:`reprobuild.image.buildcache.LayerCache`). Nothing the registry says is trusted: a
tampered entry is evicted and the layer is written anew, then pushed over the bad tag.

A registry that cannot be reached, or refuses a push, costs a ``warning:`` line and the rest of the
build runs without it: the cache only ever saves time.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from reprobuild.errors import ReproBuildError, UsageError
from reprobuild.oci.digest import Digest
from reprobuild.oci.layer import Layer
from reprobuild.oci.reference import Reference, parse_reference
from reprobuild.oci.registry import RegistryClient
from reprobuild.oci.values import Descriptor
from reprobuild.urls import redact_text

if TYPE_CHECKING:
    from reprobuild.oci.blobstore import BlobStore

log = logging.getLogger(__name__)

CONFIG_TYPE = "application/vnd.repro-build.layer-cache.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
#: The layer media types an entry may hold (what the compressors write).
LAYER_TYPES = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    }
)


def cache_reference(text: str) -> Reference:
    """``REF`` of ``--cache REF``: a repository (``host/name``), without a tag or digest."""
    ref = parse_reference(text, origin="--cache")
    if ref.tag or ref.digest:
        raise UsageError(
            f"--cache {text}: a cache is a repository; its tags are the cache's own",
            hint="give `host/name`, e.g. `--cache registry.example/team/build-cache`",
        )
    return ref


def _tag(key: str) -> str:
    return f"layer-{key}"


class RegistryLayers:
    """The layer entries in one registry repository (see the module docstring)."""

    def __init__(self, ref: Reference, client: RegistryClient | None = None) -> None:
        self.ref = ref
        self.client = client or RegistryClient(ref.api_host)
        self.disabled = False

    def _fail(self, doing: str, e: Exception) -> None:
        message = e.message if isinstance(e, ReproBuildError) else f"{type(e).__name__}: {e}"
        log.warning(
            "warning: registry cache %s: %s failed (%s); building without it",
            self.ref.name,
            doing,
            redact_text(message),
        )
        self.disabled = True

    def fetch(self, key: str, store: BlobStore, media_type: str) -> Layer | None:
        """The layer the registry holds for ``key``, its blob in ``store``; ``None`` when it has none.

        The blob is checked against the manifest's digest only: the caller re-derives its content.
        """
        if self.disabled:
            return None
        try:
            if self.client.head_manifest(self.ref.repository, _tag(key), accept=[MANIFEST_TYPE]) is None:
                return None
            data, _, _ = self.client.get_manifest(self.ref.repository, _tag(key), accept=[MANIFEST_TYPE])
            layer = self._parse(key, data, media_type)
            if layer is None:
                return None
            descriptor, diff_id = layer
            if not store.has(descriptor.digest):
                with tempfile.TemporaryDirectory(prefix=".registry-cache-", dir=store.root) as tmp:
                    part = Path(tmp) / "blob"
                    with part.open("wb") as f:
                        self.client.get_blob(self.ref.repository, str(descriptor.digest), f, size=descriptor.size)
                    store.copy_file(part, expected=descriptor.digest, size=descriptor.size, what="registry cache")
            return Layer(descriptor, diff_id, store.path(descriptor.digest))
        except (ReproBuildError, requests.RequestException, OSError) as e:
            self._fail(f"reading {_tag(key)[:18]}", e)
            return None

    def _parse(self, key: str, data: bytes, media_type: str) -> tuple[Descriptor, Digest] | None:
        try:
            manifest = json.loads(data)
            config = manifest["config"]
            [layer] = manifest["layers"]
            annotations = manifest.get("annotations") or {}
            if config["mediaType"] != CONFIG_TYPE or annotations.get("dev.repro-build.cache-key") != key:
                raise ValueError("not a repro-build layer-cache entry for this key")
            diff_id = Digest.parse(str(layer["annotations"]["dev.repro-build.diff-id"]))
            descriptor = Descriptor(str(layer["mediaType"]), Digest.parse(str(layer["digest"])), int(layer["size"]))
        except (ValueError, KeyError, TypeError, ReproBuildError) as e:
            log.warning(
                "warning: registry cache %s: entry %s is malformed (%s); ignoring it", self.ref.name, key[:12], e
            )
            return None
        if descriptor.media_type != media_type or descriptor.media_type not in LAYER_TYPES:
            return None  # another compressor's layer: not this build's
        return descriptor, diff_id

    def push(self, key: str, layer: Layer) -> None:
        """Share ``layer`` under ``key`` (a present entry that names the same blob is left as it is)."""
        if self.disabled or not layer.path.is_file():
            return
        repo = self.ref.repository
        try:
            config_bytes = json.dumps({"diff_id": str(layer.diff_id), "key": key}, sort_keys=True).encode()
            config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
            manifest: dict[str, Any] = {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config_bytes)},
                "layers": [
                    {
                        "mediaType": layer.media_type,
                        "digest": str(layer.digest),
                        "size": layer.size,
                        "annotations": {"dev.repro-build.diff-id": str(layer.diff_id)},
                    }
                ],
                "annotations": {"dev.repro-build.cache-key": key},
            }
            data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
            present = self.client.head_manifest(repo, _tag(key), accept=[MANIFEST_TYPE])
            if present is not None and present[0] == "sha256:" + hashlib.sha256(data).hexdigest():
                return
            self.client.put_blob(repo, str(layer.digest), layer.size, lambda: layer.path.open("rb"))
            self.client.put_blob(repo, config_digest, len(config_bytes), lambda: io.BytesIO(config_bytes))
            self.client.put_manifest(repo, _tag(key), data, MANIFEST_TYPE)
        except (ReproBuildError, requests.RequestException, OSError) as e:
            self._fail(f"pushing {_tag(key)[:18]}", e)
