"""Multi-platform targets (``platforms = ["linux/amd64", "linux/arm64"]``): one image per platform and the
OCI image index that lists them.

Each platform is an ordinary one-platform build (:func:`reprobuild.image.build.build_image`) from its own
lock (``repro-locks/<target>.<arch>.txt``) and its own Debian base (``base-<suite>-<arch>.json``): the
base is assembled from that architecture's ``.deb`` files and the wheels are installed by uv for that
platform, so nothing is emulated and nothing of the host's architecture enters an image. The outputs::

    build/<target>/oci/              the index (tagged <target>) and every platform's blobs and attachments
    build/<target>/manifest.json     the index's build manifest (kind "index"): each platform's manifest
    build/<target>/linux-<arch>/     each platform's own outputs, as a one-platform target has them

The index lists the images in the order of ``platforms``; its annotations are those every image carries
with the same value (the per-platform ``base.digest`` is not one of them). Everything is staged beside
``build/<target>`` and swapped in at the end, so a failed build leaves the previous outputs untouched.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Unpack

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from reprobuild.config import Config, Target
from reprobuild.errors import ImageError
from reprobuild.fsutil import exclusive_lock, make_output_dir, publish_dir
from reprobuild.image.build import BuildSettings, ImageResult, build_image
from reprobuild.image.wheels import WheelPin
from reprobuild.oci.image import Image
from reprobuild.oci.index import Index, new_index
from reprobuild.oci.layout import read_layout, write_layout
from reprobuild.oci.progress import NO_PROGRESS
from reprobuild.platforms import ARCHES, host_arch


@dataclass(frozen=True)
class IndexResult:
    """What ``image`` produced for a multi-platform target."""

    target: str
    index: Index
    layout: Path  # build/<target>/oci
    images: tuple[ImageResult, ...]  # in the index's order

    @property
    def digest(self) -> str:
        return str(self.index.digest)

    def host_image(self) -> ImageResult | None:
        """The image of this machine's platform (what ``--load`` and the smoke test use), None if none."""
        arch = host_arch()
        return next((r for r in self.images if r.image.config.get("architecture") == arch), None)


def _quiet(message: str) -> None:
    """The default ``log``: say nothing."""


def index_of(images: Sequence[Image]) -> Index:
    """The OCI image index of ``images`` (in this order, each with its config's platform); its annotations
    are the ones all images share with equal values."""

    def annotations(image: Image) -> dict[str, str]:
        value = image.manifest.get("annotations")
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    shared = annotations(images[0]) if images else {}
    for image in images[1:]:
        theirs = annotations(image)
        shared = {k: v for k, v in shared.items() if theirs.get(k) == v}
    return new_index([(image, None) for image in images], shared or None)


def project_wheel_problem(record: Mapping[str, Any] | None, target: Target) -> str | None:
    """Why the project wheel ``record`` describes (an :class:`ImageResult`'s ``project_wheel``) cannot go into
    ``target``'s image (a wheel for another machine), or None."""
    record = record or {}
    names = [str(record["filename"])] if "filename" in record else []
    artifacts = record.get("artifacts")
    for artifact in artifacts if isinstance(artifacts, list) else []:
        if isinstance(artifact, dict) and artifact.get("kind") == "wheel":
            names.append(str(artifact.get("filename", "")))
    machine = ARCHES[target.arch]
    for name in names:
        try:
            tags = parse_wheel_filename(name)[3]
        except InvalidWheelFilename:
            continue
        if not any(tag.platform == "any" or machine in tag.platform for tag in tags):
            return f"the project wheel {name} is not for {target.platform}"
    return None


def build_index(
    config: Config,
    target_name: str,
    *,
    pins: Mapping[str, list[WheelPin]] | None = None,
    base_manifests: Mapping[str, str] | None = None,
    **settings: Unpack[BuildSettings],
) -> IndexResult:
    """Build every platform of the multi-platform target ``target_name`` and the index of their images
    into ``out_dir/<target>`` (default ``<project>/build``). ``pins`` and ``base_manifests`` are by
    architecture (``verify`` passes each platform manifest's); ``settings`` are
    :func:`~reprobuild.image.build.build_image`'s arguments, used for every platform."""
    target = config.target(target_name)
    if not target.multi_platform:
        raise ImageError(
            f"target {target.name!r} has one platform ({target.platform})", hint="build it with build_image"
        )
    log = settings.get("log", _quiet)
    progress = settings.get("progress", NO_PROGRESS)
    out_root = make_output_dir((settings.get("out_dir") or config.root / "build").resolve())
    with exclusive_lock(out_root / f".{target.name}.lock"):
        for leftover in out_root.glob(f".{target.name}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        final = out_root / target.name
        with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=out_root) as tmp:
            staged = Path(tmp) / "out"
            staged.mkdir()
            built: list[ImageResult] = []
            each: BuildSettings = {**settings, "out_dir": staged}
            for one in target.per_platform():
                log(f"platform {one.platform} ({len(built) + 1} of {len(target.platforms)})")
                result = build_image(
                    config,
                    target.name,
                    platform=one.arch,
                    pins=None if pins is None else pins[one.arch],
                    base_manifest=None if base_manifests is None else base_manifests.get(one.arch),
                    **each,
                )
                problem = project_wheel_problem(result.project_wheel, one)
                if problem:
                    raise ImageError(
                        f"target {target.name!r}: {problem}",
                        hint="a multi-platform target installs one project wheel on every platform: it must be "
                        "pure Python (`py3-none-any`); build native projects per platform on that machine",
                    )
                built.append(result)
            (staged / f".{target.name}.lock").unlink(missing_ok=True)  # build_image's, not an output
            index = index_of([r.image for r in built])
            write_layout(staged / "oci", index, tag=target.name, progress=progress)
            _copy_attachments(staged / "oci", built)
            publish_dir(staged, final)
        images = tuple(_moved(r, staged, final) for r in built)
        read = read_layout(final / "oci", tag=target.name)
        assert isinstance(read, Index)
        log(f"index {read.digest}: {', '.join(t.platform for t in target.per_platform())}")
        return IndexResult(target.name, read, final / "oci", images)


def _moved(result: ImageResult, staged: Path, final: Path) -> ImageResult:
    """``result`` with its paths (and its image's layer files) under ``final`` instead of ``staged``."""
    sub = result.layout.parent.relative_to(staged)
    layout = final / sub / "oci"
    image = read_layout(layout, tag=result.target)
    assert isinstance(image, Image)
    return replace(result, image=image, layout=layout, archive=final / sub / result.archive.name)


def _copy_attachments(index_layout: Path, images: Sequence[ImageResult]) -> None:
    """Each platform's attachments (its SBOMs) into the index's layout too, still referring to that
    platform's image: an OCI 1.1 referrer names one manifest, and tools look them up per platform."""
    from reprobuild.attest.referrers import attach_to_layout, layout_referrers

    for result in images:
        attach_to_layout(index_layout, layout_referrers(result.layout, result.image.digest))


def attach_platform_provenance(result: IndexResult, manifests: Mapping[str, Path]) -> None:
    """After the platform manifests are written (``manifests``: by image digest), derive each platform's
    provenance, attach it to that platform's layout and to the index's layout."""
    from reprobuild.attest.attach import attach_provenance
    from reprobuild.attest.referrers import attach_to_layout

    for image in result.images:
        attached = attach_provenance(image.layout, image.image, manifests[image.digest])
        attach_to_layout(result.layout, [attached])
