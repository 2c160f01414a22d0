"""``repro-build image``: assemble each target's image; the digest goes to stdout.

Writes ``build/<target>/oci`` (OCI layout), ``build/<target>/image.tar`` (OCI layout + ``docker load``
archive in one file), ``build/<target>/manifest.json`` (the build manifest), the SBOMs
(``sbom.spdx.json``, ``sbom.cdx.json``) and ``provenance.json``, the last three attached to the image in
the layout. ``--load`` loads the archive into the Docker engine; ``--push REF`` uploads exactly the
blobs that were built, then the attachments.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import shlex
import time
from pathlib import Path
from typing import Any

from reprobuild.cli.output import data, log
from reprobuild.cli.preload import preload
from reprobuild.cli.results import add_json_flag, emit_json
from reprobuild.config import Config, load_config
from reprobuild.errors import ConfigError
from reprobuild.gitinfo import SourceInfo, source_info
from reprobuild.image.projectwheel import EarlyWheel, ProjectWheel
from reprobuild.oci.reference import parse_reference
from reprobuild.uvbin import ask_uv_version

# The image build itself (reprobuild.image.build and the steps around it) is imported in `run` once
# the project wheel's build waits on its backend: the import takes a good part of the start-up time, and
# the wheel's build does not need it.

#: What the steps after a build import, in the order they need it (:func:`run` has them imported on a
#: thread while the build waits on the project wheel): for ``--load`` the engine's SDK, for ``--push``
#: the transport and the registry client's HTTP stack, then the build manifest, the provenance attached
#: to the image and the command's record.
_LOAD_MODULES = ("reprobuild.oci.engine",)
_PUSH_MODULES = ("reprobuild.oci.transport", "requests")
_AFTER_BUILD_MODULES = ("reprobuild.manifest.record", "reprobuild.attest.attach", "reprobuild.image.summary")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "image",
        help="assemble the OCI image of each target (no Docker needed)",
        description="Assemble each target's image from its lock, its base and the project wheel.",
    )
    p.add_argument("--project", type=Path, default=Path(), help="project directory (default: .)")
    p.add_argument("--target", action="append", dest="targets", help="build only this target (repeatable)")
    p.add_argument("--out-dir", type=Path, default=None, help="output directory (default: <project>/build)")
    p.add_argument("--wheel", type=Path, default=None, help="install this project wheel instead of building one")
    p.add_argument("--no-project", action="store_true", help="install only the locked dependencies")
    p.add_argument("--allow-dirty", action="store_true", help="build the wheel from uncommitted changes")
    p.add_argument("--load", action="store_true", help="load the image into the Docker engine")
    p.add_argument(
        "--tag",
        metavar="NAME:TAG",
        help="the tag `--load` gives the image (default: <project>:<target>; `{target}` expands)",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="load the image and run each target's `smoke` command in it (no network, as the image's user); "
        "exit 1 if it fails",
    )
    p.add_argument("--push", metavar="REF", help="push to a registry, e.g. `host/name:tag` (`{target}` expands)")
    p.add_argument(
        "--mirror",
        metavar="URL",
        help="download the Debian base's packages from this mirror (default: [tool.repro-build.debian] mirror, "
        "else the lock's, else this machine's apt sources); the lock's hashes decide the bytes",
    )
    p.add_argument(
        "--cache",
        metavar="REF",
        help="share the build cache through this registry repository, e.g. `host/team/build-cache` (default: "
        "[tool.repro-build] cache); entries are bound to their inputs by the fleet secret "
        "($REPRO_BUILD_CACHE_SECRET or [tool.repro-build] cache-secret-file), or, without one, only layers are "
        "shared and each is re-derived from its inputs",
    )
    add_json_flag(p)
    p.set_defaults(func=run)


def _log_for(target: str, quiet: bool, message: str) -> None:
    log(f"{target}: {message}", quiet=quiet)


def _log_attached(name: str, attached: dict[str, Any] | None, *, quiet: bool) -> None:
    if attached is not None:
        log(
            f"{name}: {attached['count']} attachments (SBOMs, provenance) pushed; found through the {attached['how']}",
            quiet=quiet,
        )


def _check_names(args: argparse.Namespace, targets: list[str]) -> None:
    """``--push`` and ``--tag`` name one image per target."""
    if args.push and len(targets) > 1 and "{target}" not in args.push:
        raise ConfigError(
            f"--push {args.push} would push {len(targets)} targets to one name",
            hint="put `{target}` in the reference, e.g. `--push host/app:{target}`, or pass one `--target`",
        )
    if args.tag and len(targets) > 1 and "{target}" not in args.tag:
        raise ConfigError(
            f"--tag {args.tag} would tag {len(targets)} targets with one name",
            hint="put `{target}` in the tag, e.g. `--tag app:{target}`, or pass one `--target`",
        )
    if args.tag:
        parse_reference(args.tag.replace("{target}", targets[0]), origin="--tag")


def _check_smoke(args: argparse.Namespace, config: Config, targets: list[str]) -> None:
    """``--smoke`` needs each target's smoke command."""
    if args.smoke:
        for name in targets:
            if not config.target(name).smoke:
                raise ConfigError(
                    f"--smoke: target {name!r} has no smoke test",
                    hint=f'add one, e.g. `smoke = ["my-app", "--help"]` in [tool.repro-build.targets.{name}]',
                )


def _cache_ref(text: str | None) -> str | None:
    """The registry cache's reference, checked before anything is built."""
    if text:
        from reprobuild.image.registrycache import cache_reference

        cache_reference(text)
    return text


def _index(
    args: argparse.Namespace,
    config: Config,
    name: str,
    count: int,
    *,
    project_wheel: ProjectWheel | None,
    cache_ref: str | None,
    load: bool,
    source: SourceInfo,
) -> dict[str, Any]:
    """A multi-platform target (:mod:`reprobuild.cli.imageindex`): its record; the index digest to stdout."""
    from reprobuild.cli.imageindex import run_index

    tag = args.tag.replace("{target}", name) if args.tag else f"{config.project.normalized_name}:{name}"
    record = run_index(
        args,
        config,
        name,
        project_wheel=project_wheel,
        cache_ref=cache_ref,
        load=load,
        tag=tag,
        log_for=_log_for,
        source=source,
    )
    if not args.json:
        data(record["pushed"] or (record["digest"] if count == 1 else f"{name} {record['digest']}"))
    return record


def run(args: argparse.Namespace) -> int:
    ask_uv_version()  # the locks' checks need it; uv answers while the configuration is read
    config = load_config(args.project)
    targets = args.targets or list(config.targets)
    _check_names(args, targets)
    cache_ref = _cache_ref(args.cache or config.cache)
    _check_smoke(args, config, targets)
    load = args.load or args.smoke
    with contextlib.ExitStack() as stack:
        # Every argument is checked: the project wheel's build starts now, and the rest of the build is
        # imported once that build only waits on its backend (EarlyWheel.settle).
        project_wheel = None
        if not (args.wheel or args.no_project):
            project_wheel = stack.enter_context(EarlyWheel(config, allow_dirty=args.allow_dirty))
        source = source_info(config.root)  # git, while the wheel's build works in this process too
        if project_wheel is not None:
            project_wheel.settle()
        preload(
            (_LOAD_MODULES if load else ()) + (_PUSH_MODULES if args.push else ()) + _AFTER_BUILD_MODULES,
        )
        results = _build_targets(
            args, config, targets, project_wheel=project_wheel, cache_ref=cache_ref, load=load, source=source
        )
    if args.json:
        emit_json({"command": "image", "targets": results})
    return 0


def _build_targets(
    args: argparse.Namespace,
    config: Config,
    targets: list[str],
    *,
    project_wheel: ProjectWheel | None,
    cache_ref: str | None,
    load: bool,
    source: SourceInfo,
) -> list[dict[str, Any]]:
    """Build, load, push and smoke-test each target in turn; their ``--json`` records."""
    from reprobuild.cli.imagesteps import blobs_ahead, build_settings, push_built
    from reprobuild.cli.progress import progress_for_cli
    from reprobuild.image.build import build_image

    results: list[dict[str, Any]] = []
    for name in targets:
        if config.target(name).multi_platform:
            results.append(
                _index(
                    args,
                    config,
                    name,
                    len(targets),
                    project_wheel=project_wheel,
                    cache_ref=cache_ref,
                    load=load,
                    source=source,
                )
            )
            continue
        start = time.monotonic()
        with progress_for_cli(args.quiet) as progress, contextlib.ExitStack() as pushing:
            # The image's final bottom layers go to the registry while the rest is built.
            ahead = blobs_ahead(args.push, name, cache_ref=cache_ref, progress=progress, stack=pushing)
            result = build_image(
                config,
                name,
                background_cleanup=True,  # the work tree goes while the image is loaded or pushed
                on_final_layers=ahead.offer if ahead is not None else None,
                **build_settings(
                    args,
                    project_wheel=project_wheel,
                    cache_ref=cache_ref,
                    progress=progress,
                    log=functools.partial(_log_for, name, args.quiet),
                    source=source,
                ),
            )
            image_id = None
            tag = args.tag.replace("{target}", name) if args.tag else result.repo_tag
            if load:
                from reprobuild.oci import engine

                client = engine.connect()
                # The build's image.tar is that very archive when it carries the tag asked for.
                archive = result.archive if tag == result.repo_tag else None
                image_id = engine.load_image(
                    client, result.image, tag, result.layout.parent, progress=progress, archive=archive
                )
                log(f"{name}: loaded {tag} (image ID {image_id})", quiet=args.quiet)
            # The build manifest and the provenance derived from it do not depend on the push: written
            # first, the provenance goes up in the same push as the image.
            from reprobuild.attest.attach import attach_provenance
            from reprobuild.manifest.record import image_manifest
            from reprobuild.manifest.schema import MANIFEST_NAME, write_manifest

            manifest = image_manifest(config, result, image_id=image_id)
            write_manifest(result.layout.parent / MANIFEST_NAME, manifest)
            attach_provenance(result.layout, result.image, result.layout.parent / MANIFEST_NAME)
            pushed, attached = push_built(
                args.push,
                name,
                result.image,
                result.layout.parent,
                [result],
                cache_ref=cache_ref,
                progress=progress,
                ahead=ahead,
            )
        _log_attached(name, attached, quiet=args.quiet)
        log(f"{name}: {result.layout.parent}", quiet=args.quiet)
        from reprobuild.image.summary import image_record

        record = image_record(result, seconds=time.monotonic() - start, image_id=image_id, tag=tag, pushed=pushed)
        record["attachments"] = attached
        results.append(record)
        if args.smoke:
            # After the manifest: the image is built and recorded; the smoke test says whether it starts.
            from reprobuild.image.smoke import run_smoke

            argv = config.target(name).smoke
            log(f"{name}: smoke test `{shlex.join(argv)}`", quiet=args.quiet)
            smoke = run_smoke(client, str(image_id), argv, target=name)
            record["smoke"] = smoke.to_dict()
            log(f"{name}: smoke test passed in {smoke.seconds:.1f}s", quiet=args.quiet)
        if not args.json:
            data(pushed or (result.digest if len(targets) == 1 else f"{name} {result.digest}"))
    return results
