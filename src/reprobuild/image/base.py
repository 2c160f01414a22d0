"""Getting a target's base image: exact blobs by digest, from whichever source the config names.

:func:`resolve_base` looks the target's base kind up in the registry of sources
(:data:`reprobuild.image.basesources.BASE_SOURCES`), lets that source fetch or read the image
(:mod:`reprobuild.image.basesource` is the seam), and re-hashes every layer it points at before
the build uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from reprobuild.config import Config, Target
from reprobuild.errors import BaseImageError
from reprobuild.image.basesource import BaseRecord, BaseRequest, BaseSource, ResolvedBase
from reprobuild.image.basesources import BASE_SOURCES, DebianBuilder, with_debian
from reprobuild.oci.blobstore import BlobStore, hash_or_evict
from reprobuild.oci.image import Image
from reprobuild.oci.progress import NO_PROGRESS, Progress

__all__ = ["BaseRecord", "DebianBuilder", "ResolvedBase", "resolve_base", "verify_layers"]


def verify_layers(image: Image, what: str) -> None:
    """Re-hash every layer blob the image points at (a cache is never trusted)."""
    for layer in image.layers:
        path = getattr(layer, "path", None)
        if not isinstance(path, Path):
            continue
        # A corrupt file is removed, but not a good copy another build has renamed onto the name since.
        digest, size = hash_or_evict(path, layer.digest)
        if digest != layer.digest:
            raise BaseImageError(
                f"{what}: cached layer {layer.digest} is corrupt (it hashes to {digest}); removed it",
                hint="build again to fetch it anew",
            )
        if size != layer.size:  # the bytes are the digest's: the descriptor is what is wrong
            raise BaseImageError(
                f"{what}: layer {layer.digest} has {size} bytes, its descriptor says {layer.size}",
                hint="the base's manifest is wrong; check where it comes from",
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
    sources: Mapping[str, BaseSource] | None = None,
    progress: Progress = NO_PROGRESS,
) -> ResolvedBase:
    """Fetch or read ``target``'s base into ``store``/``staging`` and return it, verified.

    ``offline`` takes a registry base from ``store`` only (``manifest_digest`` names the platform
    manifest an earlier build recorded, when the pin is an index). ``debian`` builds the embedded
    Debian base; ``sources`` replaces the registry of sources; ``progress`` names each blob pulled.
    """
    registry = sources if sources is not None else with_debian(debian) if debian is not None else BASE_SOURCES
    source = registry.get(target.base.kind)
    if source is None:
        raise BaseImageError(
            f"base {target.base.text}: no source of {target.base.kind!r} bases in this build",
            hint=f"known kinds: {', '.join(sorted(registry))}",
        )
    request = BaseRequest(
        config, target, store, staging, offline=offline, manifest_digest=manifest_digest, progress=progress
    )
    resolved = source.resolve(request)
    if not resolved.verified:
        verify_layers(resolved.image, request.what)
    return resolved
