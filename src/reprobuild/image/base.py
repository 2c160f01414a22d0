"""Getting a target's base image: exact blobs by digest, from wherever the config says they are.

Registry references are pulled by digest (an index is resolved to the target's platform; both digests
are recorded); ``oci-layout:PATH@sha256:`` and ``docker-archive:PATH`` are read locally; every blob is
verified against its digest as it enters the blob store, and again before it is reused from there.
Base layers are never decompressed and re-compressed: the image carries them as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprobuild.config import Config, Target
from reprobuild.errors import BaseImageError, ReproBuildError
from reprobuild.oci.archive import read_archive
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest, sha256_file
from reprobuild.oci.image import Image, parse_json_object
from reprobuild.oci.index import Index, select_platform
from reprobuild.oci.layout import load_manifest, read_layout
from reprobuild.oci.mediatypes import INDEX_TYPES
from reprobuild.oci.values import Descriptor, Platform

#: Builds the embedded Debian base for (config, target, staging); wired by :mod:`reprobuild.image.build`.
DebianBuilder = Callable[[Config, Target, Path], tuple[Image, dict[str, Any]]]


@dataclass(frozen=True)
class ResolvedBase:
    """The base image for one platform, and what the manifest records about where it came from."""

    image: Image
    record: dict[str, Any] = field(default_factory=dict)


def _platform(target: Target) -> Platform:
    return Platform(target.os, target.arch)


def _pick(artifact: Image | Index, target: Target, what: str) -> tuple[Image, str | None]:
    """The image for the target's platform and, when ``artifact`` was an index, the index digest."""
    if isinstance(artifact, Index):
        try:
            return select_platform(artifact, _platform(target)), str(artifact.digest)
        except ReproBuildError as e:
            raise BaseImageError(f"{what}: {e.message}", e.hint) from e
    platform = artifact.platform
    if platform is not None and not platform.matches(_platform(target)):
        raise BaseImageError(
            f"{what} is for {platform}, but target {target.name!r} is for {target.platform}",
            hint="choose a base for the target's platform, or change `platform`",
        )
    return artifact, None


def verify_layers(image: Image, what: str) -> None:
    """Re-hash every layer blob the image points at (a cache is never trusted)."""
    for layer in image.layers:
        path = getattr(layer, "path", None)
        if not isinstance(path, Path):
            continue
        digest, size = sha256_file(path)
        if digest != layer.digest or size != layer.size:
            path.unlink(missing_ok=True)
            raise BaseImageError(
                f"{what}: cached layer {layer.digest} is corrupt (it hashes to {digest}); removed it",
                hint="build again to fetch it anew",
            )


def _registry_offline(target: Target, store: BlobStore, manifest_digest: str | None) -> ResolvedBase:
    """The registry base from the blob cache alone (what an earlier online build stored there)."""
    ref = target.base.reference
    assert ref is not None and ref.digest is not None
    wanted = Digest.parse(manifest_digest or ref.digest, origin=f"base {ref}")
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
    image, index_digest = _pick(artifact, target, what)
    missing = [str(layer.digest) for layer in image.layers if not layer.path.is_file()]
    if missing:
        raise BaseImageError(f"offline, and layers of base {ref} are not in the cache: {', '.join(missing)}")
    return ResolvedBase(
        image,
        {
            "digest": ref.digest,
            "index_digest": index_digest,
            "kind": "registry",
            "manifest_digest": str(image.digest),
            "platform": target.platform,
            "reference": str(ref),
            "stage": target.base.stage,
        },
    )


def _registry(target: Target, store: BlobStore) -> ResolvedBase:
    from reprobuild.oci import remote
    from reprobuild.oci.registry import RegistryClient

    ref = target.base.reference
    assert ref is not None and ref.digest is not None  # config refuses unpinned registry bases
    what = f"base {ref}"
    client = RegistryClient(ref.api_host)
    try:
        data, media_type, _ = client.get_manifest(ref.repository, ref.digest)
        obj = parse_json_object(data, f"{what} manifest")
        index_digest: str | None = None
        manifest_digest = ref.digest
        if str(obj.get("mediaType") or media_type) in INDEX_TYPES or "manifests" in obj:
            index_digest = ref.digest
            artifact = remote.pull(client, ref.repository, ref.digest, store, platform=_platform(target))
        else:
            artifact = remote.pull(client, ref.repository, ref.digest, store)
    except ReproBuildError as e:
        raise BaseImageError(f"pulling {what}: {e.message}", e.hint) from e
    finally:
        client.close()
    image, _ = _pick(artifact, target, what)
    manifest_digest = str(image.digest)
    # Keep the manifest and config too, so an offline rebuild (`verify --offline`) finds the whole base.
    store.put_bytes(image.manifest_bytes, expected=image.digest, what=f"{what} manifest")
    store.put_bytes(image.config_bytes, expected=image.config_digest, what=f"{what} config")
    return ResolvedBase(
        image,
        {
            "digest": ref.digest,
            "index_digest": index_digest,
            "kind": "registry",
            "manifest_digest": manifest_digest,
            "platform": target.platform,
            "reference": str(ref),
            "stage": target.base.stage,
        },
    )


def resolve_base(
    config: Config,
    target: Target,
    store: BlobStore,
    staging: Path,
    *,
    debian: DebianBuilder | None = None,
    offline: bool = False,
    manifest_digest: str | None = None,
) -> ResolvedBase:
    """Fetch or read ``target``'s base into ``store``/``staging`` and return it, verified.

    ``offline`` takes a registry base from ``store`` only (``manifest_digest`` names the platform
    manifest an earlier build recorded, when the pin is an index).
    """
    spec = target.base
    if spec.kind == "registry":
        resolved = _registry_offline(target, store, manifest_digest) if offline else _registry(target, store)
    elif spec.kind == "oci-layout":
        assert spec.path is not None and spec.digest is not None
        path = (config.root / spec.path).resolve()
        artifact = read_layout(path, digest=Digest.parse(spec.digest, origin=f"base {spec.text}"))
        image, index_digest = _pick(artifact, target, f"base {spec.text}")
        resolved = ResolvedBase(
            image,
            {
                "digest": spec.digest,
                "index_digest": index_digest,
                "kind": "oci-layout",
                "manifest_digest": str(image.digest),
                "platform": target.platform,
                "reference": spec.text,
            },
        )
    elif spec.kind == "docker-archive":
        assert spec.path is not None
        path = (config.root / spec.path).resolve()
        artifact = read_archive(path, staging / "base-archive", tag=spec.tag)
        image, index_digest = _pick(artifact, target, f"base {spec.text}")
        if spec.digest is not None and spec.digest not in (str(image.digest), index_digest):
            raise BaseImageError(
                f"base {spec.text}: the archive holds {image.digest}, not the pinned {spec.digest}",
                hint="the archive changed; pin the new digest if that is intended",
            )
        resolved = ResolvedBase(
            image,
            {
                "digest": spec.digest,
                "index_digest": index_digest,
                "kind": "docker-archive",
                "manifest_digest": str(image.digest),
                "platform": target.platform,
                "reference": spec.text,
            },
        )
    else:
        if debian is None:
            raise BaseImageError(f"base {spec.text}: the embedded Debian base is not available in this build")
        image, record = debian(config, target, staging)
        resolved = ResolvedBase(
            image,
            {
                "kind": "debian",
                "platform": target.platform,
                "reference": spec.text,
                "manifest_digest": str(image.digest),
                **record,
            },
        )
    verify_layers(resolved.image, f"base {spec.text}")
    return resolved
