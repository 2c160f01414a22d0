"""A build cache shared through an OCI registry (``image --cache REF``), for a fleet of machines.

Each entry is a small OCI artifact in the repository ``REF``, tagged ``<kind>-<key>``, where
``<key>`` is the sha256 of every input that decides the entry (computed by the reader from its own
inputs, never read from the registry):

``layer-<key>``
    one written layer (:func:`reprobuild.image.buildcache.layer_key`): its blob and diff_id;
``deps-<key>``
    a target's third-party layers as a whole (:func:`reprobuild.image.depcache.dependency_key`):
    which distributions went into which layer, the paths they hold, the wheels' licences (for the
    SBOMs) and the layers' blobs, so a full hit installs no wheel and downloads none;
``base-<key>``
    the embedded Debian base built from a base lock (:mod:`reprobuild.image.debianbase`): its
    manifest, config and layer, so a full hit downloads no ``.deb`` and assembles nothing;
``stdlib-<key>``
    the standard-library byte-code layer written on top of that base (:mod:`reprobuild.image.stdlibbytecode`);
``facts-<manifest hex>``
    what :func:`reprobuild.image.baseinfo.inspect_base` found in a base;
``inventory-<key>``
    the Debian packages of a base as the SBOMs list them (:mod:`reprobuild.image.inventorycache`).

The artifact's config (``application/vnd.repro-build.cache-entry.v1+json``) holds the kind, the key,
what the entry says (``payload``), the descriptors of its blobs, and a ``seal``; its layers are the
blobs, so a registry's garbage collector keeps them while the tag exists.

Two modes, and the build's output says which one ran:

sealed (a fleet secret is set, :mod:`reprobuild.image.cachesecret`)
    every entry carries an HMAC under the secret over its kind, key, payload and blob descriptors;
    a reader computes the key from its inputs, fetches that tag, and uses the entry only if the
    HMAC verifies for that kind and key. Each blob is checked against its digest as it arrives.
    Entries of every kind are shared.
trust-free (no secret)
    only ``layer`` entries are shared, and each is used only after it is re-derived from its inputs
    (:class:`reprobuild.image.buildcache.LayerCache`: the wheels are installed, the layer's tar is
    hashed, the blob must decompress to it). Slower, but the registry is trusted with nothing.

What fails a check is never used: it costs a ``warning:`` line, the entry is built the full way
and pushed over the bad tag. A registry that cannot be reached, or refuses a push, costs a
``warning:`` line and the rest of the build runs without it: the cache only ever saves time.
``repro-build verify`` reads no cache at all.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from reprobuild.errors import ReproBuildError, UsageError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.image.cachesecret import FleetSecret
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest
from reprobuild.oci.layer import Layer
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.reference import Reference, parse_reference
from reprobuild.oci.registry import RegistryClient
from reprobuild.oci.remote import DEFAULT_JOBS, read_config_blob, run_all
from reprobuild.oci.values import Descriptor
from reprobuild.urls import redact_text

log = logging.getLogger(__name__)

CONFIG_TYPE = "application/vnd.repro-build.cache-entry.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
#: The kinds of entry (module docstring); only ``layer`` entries can be checked without a secret.
KINDS = ("layer", "deps", "base", "stdlib", "facts", "inventory")
#: The layer media types a ``layer`` entry may hold (what the compressors write).
LAYER_TYPES = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    }
)
#: Most blobs one entry may name (a target's third-party layers are at most its layer budget).
MAX_BLOBS = 256


def cache_reference(text: str) -> Reference:
    """``REF`` of ``--cache REF``: a repository (``host/name``), without a tag or digest."""
    ref = parse_reference(text, origin="--cache")
    if ref.tag or ref.digest:
        raise UsageError(
            f"--cache {text}: a cache is a repository; its tags are the cache's own",
            hint="give `host/name`, e.g. `--cache registry.example/team/build-cache`",
        )
    return ref


@dataclass(frozen=True)
class Entry:
    """An entry read back and checked: what it says, and its blobs (in the caller's store)."""

    kind: str
    key: str
    payload: Mapping[str, Any]
    blobs: tuple[Descriptor, ...]


def _body(kind: str, key: str, payload: Mapping[str, Any], blobs: Sequence[Descriptor]) -> dict[str, Any]:
    """What the seal covers: everything the entry says, bound to its kind and key."""
    return {
        "blobs": [{"digest": str(d.digest), "media_type": d.media_type, "size": d.size} for d in blobs],
        "key": key,
        "kind": kind,
        "payload": dict(payload),
    }


class RegistryCache:
    """The entries in one registry repository (see the module docstring)."""

    def __init__(
        self,
        ref: Reference,
        *,
        secret: FleetSecret | None,
        client: RegistryClient | None = None,
        progress: Progress = NO_PROGRESS,
    ) -> None:
        self.ref = ref
        self.secret = secret
        self.client = client or RegistryClient(ref.api_host)
        self.progress = progress
        self.disabled = False
        self._lock = threading.Lock()
        self.used: list[str] = []  # the tags whose entries the build used
        self.pushed: list[str] = []  # the tags it wrote

    @property
    def sealed(self) -> bool:
        """True in the sealed mode: entries of every kind are shared, bound by the fleet secret."""
        return self.secret is not None

    @property
    def where(self) -> str:
        return f"{self.ref.api_host}/{self.ref.repository}"

    def mode_line(self) -> str:
        """One line for the build's log: which mode runs, and why."""
        if self.secret is not None:
            return (
                f"registry cache {self.where}: sealed mode (entries bound to their inputs by the fleet secret "
                f"from {self.secret.origin}; base, base facts, dependency and layer entries are shared)"
            )
        return (
            f"registry cache {self.where}: trust-free mode (no fleet secret: only layers are shared, "
            "each re-derived from its inputs before use)"
        )

    def summary_line(self) -> str:
        return f"registry cache {self.where}: {len(self.used)} entries used, {len(self.pushed)} pushed"

    def shares(self, kind: str) -> bool:
        """True when entries of ``kind`` are read and written in this mode."""
        return not self.disabled and (kind == "layer" or self.sealed)

    def _fail(self, doing: str, e: Exception) -> None:
        """Stop using the cache, with one warning (a build may read it from two threads at once)."""
        with self._lock:
            if self.disabled:
                return
            self.disabled = True
        message = e.message if isinstance(e, ReproBuildError) else f"{type(e).__name__}: {e}"
        log.warning(
            "warning: registry cache %s: %s failed (%s); building without it", self.where, doing, redact_text(message)
        )

    def _ignore(self, tag: str, why: str) -> None:
        log.warning("warning: registry cache %s: entry %s not used (%s); building it anew", self.where, tag[:24], why)

    def get(self, kind: str, key: str, store: BlobStore) -> Entry | None:
        """The entry ``kind``-``key``, its blobs verified into ``store``; ``None`` when absent or unusable."""
        if not self.shares(kind):
            return None
        import requests  # loaded by the client already; for the errors it raises

        tag = f"{kind}-{key}"
        repo = self.ref.repository
        try:
            if self.client.head_manifest(repo, tag, accept=[MANIFEST_TYPE]) is None:
                return None
            data, _, _ = self.client.get_manifest(repo, tag, accept=[MANIFEST_TYPE])
            parsed = self._parse(tag, data)
            if parsed is None:
                return None
            config_desc, _ = parsed
            config = read_config_blob(self.client, repo, config_desc, what=f"registry cache entry {tag[:24]}")
            entry = self._check(kind, key, tag, config)
            if entry is None:
                return None
            self._download(entry, store)
        except (ReproBuildError, requests.RequestException, OSError) as e:
            self._fail(f"reading {tag[:24]}", e)
            return None
        self.used.append(tag)
        return entry

    def _parse(self, tag: str, data: bytes) -> tuple[Descriptor, list[Descriptor]] | None:
        try:
            manifest = json.loads(data)
            config = Descriptor.from_json(manifest["config"], origin=f"{tag} config")
            layers = [Descriptor.from_json(d, origin=f"{tag} layers") for d in manifest["layers"]]
            if config.media_type != CONFIG_TYPE:
                raise ValueError(f"its config is {config.media_type!r}, not a repro-build cache entry")
        except (ValueError, KeyError, TypeError, ReproBuildError) as e:
            self._ignore(tag, f"malformed: {e}")
            return None
        return config, layers

    def _check(self, kind: str, key: str, tag: str, config: bytes) -> Entry | None:
        """The entry the config describes, if it is ``kind``-``key`` and (sealed mode) its seal verifies."""
        try:
            obj = json.loads(config)
            body = {name: obj[name] for name in ("blobs", "key", "kind", "payload")}
            if not isinstance(body["payload"], dict) or not isinstance(body["blobs"], list):
                raise TypeError("payload or blobs of the wrong type")
            if len(body["blobs"]) > MAX_BLOBS:
                raise ValueError(f"{len(body['blobs'])} blobs")
            blobs = tuple(
                Descriptor(str(b["media_type"]), Digest.parse(str(b["digest"])), int(b["size"])) for b in body["blobs"]
            )
            seal = obj.get("seal")
        except (ValueError, KeyError, TypeError, ReproBuildError) as e:
            self._ignore(tag, f"malformed: {e}")
            return None
        if body["kind"] != kind or body["key"] != key:
            self._ignore(tag, f"it is the entry of {body['kind']!s:.8}-{body['key']!s:.12}, not of this key")
            return None
        if self.secret is not None and not self.secret.verifies(canonical_json_bytes(body), seal):
            self._ignore(tag, f"its seal does not verify with the fleet secret from {self.secret.origin}")
            return None
        if any(b.size < 0 for b in blobs):
            self._ignore(tag, "a blob of negative size")
            return None
        return Entry(kind, key, body["payload"], blobs)

    def _download(self, entry: Entry, store: BlobStore) -> None:
        repo = self.ref.repository
        work: list[Callable[[], None]] = []
        for desc in entry.blobs:
            if store.has(desc.digest):
                continue

            def fetch(desc: Descriptor = desc) -> None:
                name = f"pulling cache {entry.kind} blob {desc.digest.hex[:12]} from {self.where}"
                with self.progress.task(name, desc.size) as task:

                    def fill(f: BinaryIO) -> None:
                        task.restart()
                        self.client.get_blob(repo, str(desc.digest), f, size=desc.size, progress=task)

                    store.receive(fill, expected=desc.digest)

            work.append(fetch)
        run_all(work, DEFAULT_JOBS)

    def put(self, kind: str, key: str, payload: Mapping[str, Any], blobs: Sequence[tuple[Descriptor, Path]]) -> None:
        """Share ``payload`` and ``blobs`` as ``kind``-``key`` (an identical entry there is left as it is)."""
        if not self.shares(kind):
            return
        import requests  # loaded by the client already; for the errors it raises

        tag = f"{kind}-{key}"
        repo = self.ref.repository
        try:
            body = _body(kind, key, payload, [d for d, _ in blobs])
            seal = self.secret.seal(canonical_json_bytes(body)) if self.secret is not None else None
            config = canonical_json_bytes({**body, "seal": seal})
            config_desc = Descriptor(CONFIG_TYPE, Digest.of_bytes(config), len(config))
            manifest = {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": config_desc.to_json(),
                "layers": [d.to_json() for d, _ in blobs],
                "annotations": {"dev.repro-build.cache-key": key, "dev.repro-build.cache-kind": kind},
            }
            data = canonical_json_bytes(manifest)
            present = self.client.head_manifest(repo, tag, accept=[MANIFEST_TYPE])
            if present is not None and present[0] == str(Digest.of_bytes(data)):
                return
            run_all([self._upload(kind, d, path) for d, path in blobs], DEFAULT_JOBS)
            self.client.put_blob(repo, str(config_desc.digest), len(config), lambda: io.BytesIO(config))
            with self.progress.task(f"pushing cache entry {tag[:24]} to {self.where}") as task:
                self.client.put_manifest(repo, tag, data, MANIFEST_TYPE)
                task(len(data))
        except (ReproBuildError, requests.RequestException, OSError) as e:
            self._fail(f"pushing {tag[:24]}", e)
            return
        self.pushed.append(tag)

    def _upload(self, kind: str, desc: Descriptor, path: Path) -> Callable[[], None]:
        def work() -> None:
            name = f"pushing cache {kind} blob {desc.digest.hex[:12]} to {self.where}"
            with self.progress.task(name, desc.size) as task:

                def opener() -> BinaryIO:
                    task.restart()
                    return path.open("rb")

                if not self.client.put_blob(self.ref.repository, str(desc.digest), desc.size, opener, progress=task):
                    task.note("already in the registry")

        return work

    # -- layer entries (image/buildcache.py's LayerCache) ------------------------------------------

    def fetch_layer(self, key: str, store: BlobStore, media_type: str) -> Layer | None:
        """The layer the registry holds for ``key``, its blob in ``store``; ``None`` when it has none.

        The blob is checked against its digest only: the caller re-derives its content.
        """
        entry = self.get("layer", key, store)
        if entry is None:
            return None
        tag = f"layer-{key}"
        try:
            [descriptor] = entry.blobs
            diff_id = Digest.parse(str(entry.payload["diff_id"]))
        except (ValueError, KeyError, TypeError, ReproBuildError) as e:
            self._ignore(tag, f"malformed: {e}")
            return None
        if descriptor.media_type != media_type or descriptor.media_type not in LAYER_TYPES:
            self._ignore(tag, f"it holds a {descriptor.media_type} layer, this build writes {media_type}")
            return None
        return Layer(descriptor, diff_id, store.path(descriptor.digest))

    def push_layer(self, key: str, layer: Layer) -> None:
        """Share ``layer`` under ``key``."""
        if layer.path.is_file():
            self.put("layer", key, {"diff_id": str(layer.diff_id)}, [(layer.descriptor, layer.path)])
