"""``repro-build verify MANIFEST`` of a multi-platform target: rebuild every platform, then the index.

Each platform's image is rebuilt from its embedded manifest exactly as a one-platform manifest is
(:func:`reprobuild.manifest.verify.verify_image`; its ``provenance.json`` and layout are looked for in
``linux-<arch>/`` beside the index manifest), then the index is made again from the rebuilt images
(:func:`reprobuild.image.multiplatform.index_of`) and its digest compared with the recorded one.
"""

from __future__ import annotations

from pathlib import Path

from reprobuild.errors import ManifestError
from reprobuild.image.multiplatform import index_of
from reprobuild.manifest.indexschema import IndexManifest, read_any_manifest
from reprobuild.manifest.semdiff import Divergence
from reprobuild.manifest.verify import RebuildOptions, VerifyResult, verify_image
from reprobuild.oci.image import Image
from reprobuild.platforms import ARCHES, platform_dir


def platform_subdir(platform: str, path: Path) -> str:
    """``linux-<arch>``: the directory of a recorded platform's outputs (only the two known platforms)."""
    os_, _, arch = platform.partition("/")
    if os_ != "linux" or arch not in ARCHES:
        raise ManifestError(
            f"{path}: platform {platform!r} is not linux/amd64 or linux/arm64",
            hint="verify a manifest written by `repro-build image`",
        )
    return platform_dir(arch)


def verify_any(path: Path, options: RebuildOptions) -> VerifyResult:
    """``repro-build verify MANIFEST``: an image manifest as :func:`~reprobuild.manifest.verify.verify_image`
    verifies it, an index manifest as :func:`verify_index` does."""
    manifest = read_any_manifest(path)  # every field checked: nothing from it is a path or an option until then
    if isinstance(manifest, IndexManifest):
        return verify_index(manifest, path, options)
    return verify_image(manifest, path, options)


def verify_index(manifest: IndexManifest, path: Path, options: RebuildOptions) -> VerifyResult:
    """Rebuild and compare every platform of ``manifest`` (read from ``path``), then its index."""
    compared = 0
    divergences: list[Divergence] = []
    warnings: list[str] = []
    images: list[Image] = []
    for platform, image in zip(manifest.platforms, manifest.images, strict=True):
        sub = platform_subdir(platform, path)
        options.log(f"platform {platform}")
        result = verify_image(image, path, options.below(sub), beside=path.parent / sub)
        compared += result.compared
        divergences += [Divergence(f"{platform} {d.artifact}", d.hazard, d.details) for d in result.divergences]
        warnings += [w for w in result.warnings if w not in warnings]
        assert result.image is not None
        images.append(result.image)
    index = index_of(images)
    compared += 1
    if str(index.digest) != manifest.index.digest:
        divergences.append(Divergence("image index", "digest", (f"{manifest.index.digest} vs {index.digest}",)))
    return VerifyResult(compared, tuple(divergences), tuple(warnings))
