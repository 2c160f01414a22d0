"""The steps of ``repro-build image`` that a one-platform target (:mod:`reprobuild.cli.image`) and a
multi-platform one (:mod:`reprobuild.cli.imageindex`) take alike: the build's settings from the command
line, and the push of the built image or index with its attachments.

The push takes the layers the registry cache (``--cache REF``) holds from it: to a repository of the
cache's registry, each such layer is mounted from the cache's repository instead of uploaded.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprobuild.gitinfo import SourceInfo
from reprobuild.image.build import BuildSettings, ImageResult
from reprobuild.image.debianbase import debian_base
from reprobuild.image.projectwheel import ProjectWheel
from reprobuild.image.registrycache import cache_reference
from reprobuild.oci.progress import Progress

if TYPE_CHECKING:
    from reprobuild.oci.index import Artifact
    from reprobuild.oci.pushahead import BlobsAhead


def build_settings(
    args: argparse.Namespace,
    *,
    project_wheel: ProjectWheel | None,
    cache_ref: str | None,
    progress: Progress,
    log: Callable[[str], None],
    source: SourceInfo | None = None,
) -> BuildSettings:
    """What ``image``'s options ask of every build (``build_image``'s and ``build_index``'s arguments);
    ``source``: the project's source facts, when already read."""
    return {
        "source": source,
        "out_dir": args.out_dir,
        "wheel": args.wheel,
        "project_wheel": project_wheel,
        "cache_ref": cache_ref,
        "debian": functools.partial(debian_base, mirror=args.mirror, progress=progress),
        "progress": progress,
        "log": log,
    }


def push_built(
    push: str | None,
    name: str,
    artifact: Artifact,
    staging: Path,
    images: Sequence[ImageResult],
    *,
    cache_ref: str | None,
    progress: Progress,
    ahead: BlobsAhead | None = None,
) -> tuple[str | None, dict[str, Any] | None]:
    """Push ``artifact`` (an image, or an index with its images) to ``--push`` (``{target}`` expanded to
    ``name``), mounting what the registry cache ``cache_ref`` holds, with the attachments (SBOMs,
    provenance) of each of ``images``; return the reference pinned by the digest pushed, and the
    ``--json`` record of the attachments: how many, and how a reader finds them (both ``None`` without
    ``--push``). ``ahead``: what :func:`blobs_ahead` sent while the image was built."""
    if push is None:
        return None, None
    from reprobuild.attest.attach import write_with_attachments
    from reprobuild.oci.location import parse_location

    location = parse_location(push.replace("{target}", name))
    digest, count, how = write_with_attachments(
        location,
        artifact,
        staging,
        [(one.layout, one.image) for one in images],
        mount_from=cache_reference(cache_ref) if cache_ref else None,
        progress=progress,
        ahead=ahead,
    )
    return location.pinned(digest), {"count": count, "how": how}


def blobs_ahead(
    push: str | None, name: str, *, cache_ref: str | None, progress: Progress, stack: contextlib.ExitStack
) -> BlobsAhead | None:
    """For ``--push`` to a registry: the :class:`BlobsAhead` that sends the image's final bottom layers there
    while it is built (its client and threads held by ``stack``); ``None`` for any other destination."""
    if push is None:
        return None
    from reprobuild.oci.location import parse_location
    from reprobuild.oci.pushahead import BlobsAhead
    from reprobuild.oci.registry import RegistryClient
    from reprobuild.oci.transport import mount_repository

    ref = parse_location(push.replace("{target}", name)).reference
    if ref is None:
        return None
    mount = mount_repository(ref, cache_reference(cache_ref) if cache_ref else None)
    client = stack.enter_context(RegistryClient(ref.api_host))
    return stack.enter_context(BlobsAhead(client, ref.repository, mount_from=mount, progress=progress))
