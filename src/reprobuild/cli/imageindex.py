"""``repro-build image`` for a multi-platform target: every platform's image, the index, its manifests.

``--push REF`` pushes the index (with every platform's image) and each platform's attachments in one push;
``--load`` and ``--smoke`` use the image of this machine's platform only, as an engine runs one platform
(and say so); the other platforms are never run here.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import time
from collections.abc import Callable
from typing import Any

from reprobuild.cli.imagesteps import build_settings, push_built
from reprobuild.cli.progress import progress_for_cli
from reprobuild.config import Config
from reprobuild.errors import ImageError
from reprobuild.gitinfo import SourceInfo
from reprobuild.image.build import ImageResult
from reprobuild.image.multiplatform import IndexResult, attach_platform_provenance, build_index
from reprobuild.image.projectwheel import ProjectWheel
from reprobuild.image.summary import image_record
from reprobuild.manifest.indexschema import make_index_manifest, write_index_manifest
from reprobuild.manifest.record import image_manifest
from reprobuild.manifest.schema import MANIFEST_NAME, write_manifest
from reprobuild.platforms import host_arch


def _host(result: IndexResult) -> ImageResult:
    host = result.host_image()
    assert host is not None  # checked by _check_host before the build
    return host


def _check_host(config: Config, name: str, what: str) -> None:
    """``--load``/``--smoke`` need an image of this machine's platform: refuse before building otherwise."""
    target = config.target(name)
    if host_arch() not in target.platforms:
        raise ImageError(
            f"{what}: target {name!r} has no image for this machine's platform (linux/{host_arch()}); "
            f"its platforms: {', '.join(t.platform for t in target.per_platform())}",
            hint="the engine runs images of its own platform: load or smoke-test on such a machine, or build "
            "without `--load`/`--smoke`",
        )


def run_index(
    args: argparse.Namespace,
    config: Config,
    name: str,
    *,
    project_wheel: ProjectWheel | None,
    cache_ref: str | None,
    load: bool,
    tag: str,
    log_for: Callable[[str, bool, str], None],
    source: SourceInfo | None = None,
) -> dict[str, Any]:
    """Build, record and (on request) load, push and smoke-test the multi-platform target ``name``;
    return its ``--json`` record. ``source``: the project's source facts, when already read."""
    start = time.monotonic()
    say = functools.partial(log_for, name, args.quiet)
    if load:
        _check_host(config, name, "--smoke" if args.smoke else "--load")
    with progress_for_cli(args.quiet) as progress:
        result = build_index(
            config,
            name,
            **build_settings(
                args, project_wheel=project_wheel, cache_ref=cache_ref, progress=progress, log=say, source=source
            ),
        )
        image_id: str | None = None
        client: Any = None
        host: ImageResult | None = None
        if load:
            from reprobuild.oci import engine

            host = _host(result)
            platform = host.image.config.get("architecture")
            say(f"loading the linux/{platform} image only (the engine runs this machine's platform)")
            client = engine.connect()
            image_id = engine.load_image(client, host.image, tag, host.layout.parent, progress=progress)
            say(f"loaded {tag} (image ID {image_id})")
        # The build manifests and the provenance derived from them do not depend on the push: written
        # first, each platform's provenance goes up in the same push as the index.
        manifests, paths = [], {}
        for one in result.images:
            manifest = image_manifest(config, one, image_id=image_id if one is host else None)
            path = one.layout.parent / MANIFEST_NAME
            write_manifest(path, manifest)
            manifests.append(manifest)
            paths[one.digest] = path
        write_index_manifest(result.layout.parent / MANIFEST_NAME, make_index_manifest(name, result.index, manifests))
        attach_platform_provenance(result, paths)
        pushed, attached = push_built(
            args.push,
            name,
            result.index,
            result.layout.parent,
            result.images,
            cache_ref=cache_ref,
            progress=progress,
        )
        if pushed is not None:
            say(f"pushed the index of {len(result.images)} platforms: {pushed}")
    if attached is not None:
        say(
            f"{attached['count']} attachments (each platform's SBOMs and provenance) pushed; found through the "
            f"{attached['how']}"
        )
    say(str(result.layout.parent))
    record = _record(result, name, start=start, image_id=image_id, tag=tag, pushed=pushed, attached=attached)
    if args.smoke:
        assert host is not None
        record["smoke"] = _smoke(config, name, client, str(image_id), say)
    return record


def _record(
    result: IndexResult,
    name: str,
    *,
    start: float,
    image_id: str | None,
    tag: str,
    pushed: str | None,
    attached: dict[str, Any] | None,
) -> dict[str, Any]:
    """The ``--json`` record of a multi-platform target: the index, then each platform's image."""
    platforms = []
    for one in result.images:
        entry = image_record(one, seconds=0.0, image_id=None, tag=None, pushed=None)
        del entry["seconds"], entry["loaded"], entry["pushed"], entry["smoke"]
        platforms.append(entry)
    return {
        "target": name,
        "digest": result.digest,
        "media_type": result.index.media_type,
        "layout": str(result.layout),
        "manifest": str(result.layout.parent / MANIFEST_NAME),
        "platforms": platforms,
        "seconds": round(time.monotonic() - start, 3),
        "loaded": None if image_id is None else {"image_id": image_id, "tag": tag},
        "pushed": pushed,
        "attachments": attached,
        "smoke": None,
    }


def _smoke(config: Config, name: str, client: Any, image_id: str, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the target's smoke test in the loaded image of this machine's platform."""
    from reprobuild.image.smoke import run_smoke

    argv = config.target(name).smoke
    say(f"smoke test `{shlex.join(argv)}` on linux/{host_arch()} only (this machine's platform)")
    smoke = run_smoke(client, image_id, argv, target=name)
    say(f"smoke test passed in {smoke.seconds:.1f}s")
    return smoke.to_dict()
