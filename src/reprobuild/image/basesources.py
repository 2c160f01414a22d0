"""The kinds of base image, one :class:`~reprobuild.image.basesource.BaseSource` each, and their registry.

``registry``
    pulled by digest (an index is resolved to the target's platform; both digests are recorded);
    offline, taken from the blob store alone.
``oci-layout``
    ``oci-layout:PATH@sha256:…``, read from a local OCI image layout.
``docker-archive``
    ``docker-archive:PATH[@sha256:…]``, read from a ``docker save`` archive.
``docker-daemon``
    ``docker-daemon:sha256:…``, an image of the local Docker engine pinned by its ID (skopeo's form);
    carried with uncompressed layers (see :class:`EngineSource`).
``debian``
    ``debian:SUITE``, the embedded Debian base built from locked ``.deb`` files by a builder that
    :mod:`reprobuild.image.build` is given (:data:`DebianBuilder`).

Every blob is verified against its digest as it enters the blob store. Base layers are never
decompressed and re-compressed: the image carries them as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from reprobuild.config import Config, Target
from reprobuild.errors import BaseImageError, DigestMismatchError, ReproBuildError
from reprobuild.image.basesource import BaseRecord, BaseRequest, BaseSource, ResolvedBase, pick_platform
from reprobuild.oci.archive import read_archive
from reprobuild.oci.blobstore import BlobStore, HashingWriter
from reprobuild.oci.compress import DECOMPRESS_ERRORS
from reprobuild.oci.digest import CHUNK, Digest
from reprobuild.oci.image import Image, image_from_config_bytes, parse_json_object
from reprobuild.oci.layer import Layer
from reprobuild.oci.layout import load_manifest, read_layout
from reprobuild.oci.mediatypes import INDEX_TYPES, OCI_CONFIG, OCI_LAYER
from reprobuild.oci.values import Descriptor

#: Builds the embedded Debian base for (config, target, staging): the image and the lock it was built from.
#: Every layer blob of the image has just been verified by the builder: re-hashed as it was read from its
#: cache entry, or verified as it was written (:func:`reprobuild.image.debianbase.debian_base`).
DebianBuilder = Callable[[Config, Target, Path], tuple[Image, dict[str, Any]]]


def _record(request: BaseRequest, kind: str, image: Image, **origin: Any) -> BaseRecord:
    return BaseRecord(
        kind=kind,
        reference=request.target.base.text,
        platform=request.target.platform,
        manifest_digest=str(image.digest),
        origin=MappingProxyType(origin),
    )


class RegistrySource:
    """A base pulled from a registry by digest (``config`` refuses unpinned registry bases)."""

    kind = "registry"

    def resolve(self, request: BaseRequest) -> ResolvedBase:
        ref = request.target.base.reference
        assert ref is not None and ref.digest is not None
        image, index_digest = self._offline(request) if request.offline else self._pull(request)
        return ResolvedBase(
            image,
            _record(
                request,
                self.kind,
                image,
                digest=ref.digest,
                index_digest=index_digest,
                stage=request.target.base.stage,
            ),
        )

    def _pull(self, request: BaseRequest) -> tuple[Image, str | None]:
        from reprobuild.oci import remote
        from reprobuild.oci.registry import RegistryClient

        ref = request.target.base.reference
        assert ref is not None and ref.digest is not None
        what, store = f"base {ref}", request.store
        client = RegistryClient(ref.api_host)
        try:
            data, media_type, _ = client.get_manifest(ref.repository, ref.digest)
            obj = parse_json_object(data, f"{what} manifest")
            if str(obj.get("mediaType") or media_type) in INDEX_TYPES or "manifests" in obj:
                artifact = remote.pull(
                    client, ref.repository, ref.digest, store, platform=request.platform, progress=request.progress
                )
            else:
                artifact = remote.pull(client, ref.repository, ref.digest, store, progress=request.progress)
        except ReproBuildError as e:
            # Keep the class: a digest mismatch stays a DigestMismatchError, a registry error a RegistryError.
            raise e.with_context(f"pulling {what}") from e
        finally:
            client.close()
        image, index_digest = pick_platform(artifact, request, what)
        # Keep the manifest and config too, so an offline rebuild (`verify --offline`) finds the whole base.
        store.put_bytes(image.manifest_bytes, expected=image.digest, what=f"{what} manifest")
        store.put_bytes(image.config_bytes, expected=image.config_digest, what=f"{what} config")
        return image, index_digest

    def _offline(self, request: BaseRequest) -> tuple[Image, str | None]:
        """The base from the blob store alone (what an earlier online build stored there)."""
        ref = request.target.base.reference
        assert ref is not None and ref.digest is not None
        store = request.store
        wanted = Digest.parse(request.manifest_digest or ref.digest, origin=f"base {ref}")
        if not store.has(wanted):
            raise BaseImageError(
                f"offline, and base {ref} (manifest {wanted}) is not in the cache {store.dir}",
                hint="build once with network access, or `repro-build copy` the base into an OCI layout and use "
                "`oci-layout:PATH@sha256:…`",
            )
        what = f"cached base {ref}"
        artifact = load_manifest(
            lambda d, w: store.read_verified(d, what=w),
            lambda d: store.path(d.digest),
            Descriptor("", wanted, store.path(wanted).stat().st_size),
            what=what,
        )
        image, index_digest = pick_platform(artifact, request, what)
        missing = [str(layer.digest) for layer in image.layers if not layer.path.is_file()]
        if missing:
            raise BaseImageError(f"offline, and layers of base {ref} are not in the cache: {', '.join(missing)}")
        return image, index_digest


class LayoutSource:
    """A base in a local OCI image layout, pinned by digest: ``oci-layout:PATH@sha256:…``."""

    kind = "oci-layout"

    def resolve(self, request: BaseRequest) -> ResolvedBase:
        spec = request.target.base
        assert spec.path is not None and spec.digest is not None
        digest = Digest.parse(spec.digest, origin=request.what)
        artifact = read_layout((request.root / spec.path).resolve(), digest=digest)
        image, index_digest = pick_platform(artifact, request, request.what)
        return ResolvedBase(image, _record(request, self.kind, image, digest=spec.digest, index_digest=index_digest))


class ArchiveSource:
    """A base in a ``docker save`` archive: ``docker-archive:PATH[@sha256:…]``."""

    kind = "docker-archive"

    def resolve(self, request: BaseRequest) -> ResolvedBase:
        spec = request.target.base
        assert spec.path is not None
        artifact = read_archive((request.root / spec.path).resolve(), request.staging / "base-archive", tag=spec.tag)
        image, index_digest = pick_platform(artifact, request, request.what)
        if spec.digest is not None and spec.digest not in (str(image.digest), index_digest):
            raise BaseImageError(
                f"{request.what}: the archive holds {image.digest}, not the pinned {spec.digest}",
                hint="the archive changed; pin the new digest if that is intended",
            )
        return ResolvedBase(image, _record(request, self.kind, image, digest=spec.digest, index_digest=index_digest))


class EngineSource:
    """A base in the local Docker engine, pinned by its image ID: ``docker-daemon:sha256:…``.

    An engine does not keep the compressed blobs it pulled, and what ``docker save`` gives back depends
    on its version and storage (uncompressed tars from the classic store, the original blobs from the
    containerd store; a manifest of its own making). So only what the image ID pins is taken: the
    config bytes (the ID is their digest) and, through the config's diff_ids, every layer's tar. The
    layers are carried uncompressed (their digest is their diff_id) under a manifest written here, so
    the base's bytes do not depend on the engine. Pushing the result keeps the layers uncompressed;
    use a registry, layout or archive base to keep compressed base layers.
    """

    kind = "docker-daemon"

    def resolve(self, request: BaseRequest) -> ResolvedBase:
        from reprobuild.oci import engine

        spec = request.target.base
        assert spec.digest is not None  # config refuses an engine base without an image ID
        saved = engine.save_image(engine.connect(), spec.digest, request.staging / "base-engine")
        image, _ = pick_platform(saved, request, request.what)
        if str(image.config_digest) != spec.digest:
            raise BaseImageError(
                f"{request.what}: the engine saved the image {image.config_digest}, not the pinned {spec.digest}",
                hint="pin the image ID `docker image inspect --format {{.Id}} NAME` prints",
            )
        layers = [_uncompressed(layer, request.store, request.what) for layer in image.layers]
        image = image_from_config_bytes(image.config_bytes, layers, OCI_CONFIG)
        return ResolvedBase(image, _record(request, self.kind, image, digest=spec.digest))


def _uncompressed(layer: Layer, store: BlobStore, what: str) -> Layer:
    """``layer`` as an uncompressed OCI layer whose digest is its diff_id (decompressed into ``store`` if needed)."""
    if layer.compression == "none" and layer.digest == layer.diff_id:
        return Layer(Descriptor(OCI_LAYER, layer.digest, layer.size), layer.diff_id, layer.path)

    def fill(blob: HashingWriter) -> None:
        with layer.open_uncompressed() as f:
            while chunk := f.read(CHUNK):
                blob.write(chunk)

    try:
        digest, size = store.write(fill, what=f"{what} layer {layer.diff_id}")
    except DECOMPRESS_ERRORS as e:
        raise BaseImageError(f"{what}: the engine's layer {layer.digest} does not decompress: {e}") from e
    if digest != layer.diff_id:
        raise DigestMismatchError(
            f"{what}: the engine's layer {layer.digest} decompresses to {digest}, not its diff_id {layer.diff_id}"
        )
    return Layer(Descriptor(OCI_LAYER, digest, size), digest, store.path(digest))


@dataclass(frozen=True)
class DebianSource:
    """The embedded Debian base, built from the ``.deb`` files its lock pins by ``builder``."""

    builder: DebianBuilder | None = None
    kind = "debian"

    def resolve(self, request: BaseRequest) -> ResolvedBase:
        if self.builder is None:
            raise BaseImageError(f"{request.what}: the embedded Debian base is not available in this build")
        image, lock = self.builder(request.config, request.target, request.staging)
        return ResolvedBase(image, _record(request, self.kind, image, **lock), verified=True)


#: Every kind of base, by the kind ``config`` parses a ``base`` into. The Debian entry builds nothing
#: until :func:`with_debian` gives it a builder (the image build does).
BASE_SOURCES: Mapping[str, BaseSource] = MappingProxyType(
    {
        source.kind: source
        for source in (RegistrySource(), LayoutSource(), ArchiveSource(), EngineSource(), DebianSource())
    }
)


def with_debian(builder: DebianBuilder | None) -> Mapping[str, BaseSource]:
    """:data:`BASE_SOURCES` with the Debian base built by ``builder``."""
    if builder is None:
        return BASE_SOURCES
    return MappingProxyType({**BASE_SOURCES, DebianSource.kind: DebianSource(builder)})
