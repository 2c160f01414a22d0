"""``repro-build base lock|build``: the embedded Debian base (``base = "debian:<suite>"``).

``base lock`` resolves the package set against the mirror and writes ``repro-locks/base-<suite>-<arch>.json``;
``--check`` exits 1 naming what changed. ``base build`` turns the lock into an OCI layout and a
``docker load`` archive under ``build/base/`` (or ``--output``), with no registry and no Docker.
Defaults come from ``[tool.repro-build.debian]`` when the project has a pyproject.toml.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reprobuild.base.debian.build import build_base, write_outputs
from reprobuild.base.debian.fetch import DebCache, default_cache_dir
from reprobuild.base.debian.lock import (
    BaseInputs,
    check_inputs,
    check_lock,
    default_lock_path,
    make_lock,
    packages_with_defaults,
    read_lock,
    write_lock,
)
from reprobuild.base.debian.release import DEFAULT_KEYRING
from reprobuild.base.debian.sources import default_mirror
from reprobuild.cli.output import data, log
from reprobuild.cli.progress import progress_for_cli
from reprobuild.epoch import parse_epoch
from reprobuild.fsutil import make_output_dir
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.platforms import require_host_arch
from reprobuild.urls import redact

#: The suite used when neither the command line nor the project names one.
DEFAULT_SUITE = "bookworm"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "base",
        help="lock and build the embedded Debian base image (no registry, no Docker)",
        description="Lock and build a Python base image from pinned Debian packages.",
    )
    cmds = p.add_subparsers(dest="base_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--project", type=Path, default=Path(), help="project directory (default: .)")
        q.add_argument("--suite", help=f"Debian suite (default: the project's debian base, else {DEFAULT_SUITE})")
        q.add_argument("--arch", help="Debian architecture (default: this machine's)")
        q.add_argument("--lock", type=Path, help="lock file (default: repro-locks/base-<suite>-<arch>.json)")
        q.add_argument(
            "--cache", type=Path, help="download cache (default: $REPRO_BUILD_CACHE or ~/.cache/repro-build)"
        )

    lock = cmds.add_parser("lock", help="resolve the package set and write the base lock")
    common(lock)
    lock.add_argument(
        "--mirror",
        help="Debian mirror URL; a snapshot archive URL (…/archive/debian/<YYYYMMDDTHHMMSSZ>) keeps the "
        "lock current (default: [tool.repro-build.debian] mirror, else this machine's apt sources)",
    )
    lock.add_argument("--package", action="append", default=[], metavar="NAME", help="extra package (repeatable)")
    lock.add_argument(
        "--extra-suite",
        action="append",
        default=[],
        metavar="SUITE[=URL]",
        help="merge another suite's index (e.g. bookworm-updates, bookworm-security); its mirror is "
        "URL or this machine's apt source for it; the highest version of each package wins",
    )
    lock.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="NAME",
        help="treat this dependency as present without installing it (e.g. one only maintainer scripts need)",
    )
    lock.add_argument("--check", action="store_true", help="exit 1 if the lock is stale, naming what changed")
    lock.set_defaults(func=run_lock)

    build = cmds.add_parser("build", help="build the base image from its lock")
    common(build)
    build.add_argument("--output", type=Path, help="output directory (default: build/base)")
    build.add_argument(
        "--mirror",
        help="download from this mirror instead of the lock's (e.g. with credentials, or on a machine whose apt "
        "sources lack the suite); the lock's hashes decide the bytes",
    )
    build.add_argument("--offline", action="store_true", help="use only the cache; never download")
    build.add_argument("--epoch", help="SOURCE_DATE_EPOCH for the base (default: the Release file's date)")
    build.add_argument("--compression", default="gzip", help="gzip (default), zstd or none")
    build.set_defaults(func=run_build)


def _project_defaults(project: Path) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(suite, mirror, extra packages) from the project's config, when it has a pyproject.toml."""
    if not (project / "pyproject.toml").is_file():
        return None, None, ()
    from reprobuild.config import load_config

    config = load_config(project)
    suites = sorted({t.base.suite for t in config.targets.values() if t.base.kind == "debian" and t.base.suite})
    return (suites[0] if suites else None), config.debian.mirror, config.debian.packages


def _suite_arch(args: argparse.Namespace, project_suite: str | None) -> tuple[str, str]:
    suite = args.suite or project_suite or DEFAULT_SUITE
    # Debian's names for these two machines are the OCI ones.
    arch = args.arch or require_host_arch(hint="pass the Debian architecture: `--arch amd64` or `--arch arm64`")
    return suite, arch


def run_lock(args: argparse.Namespace) -> int:
    project = args.project.resolve()
    p_suite, p_mirror, p_packages = _project_defaults(project)
    suite, arch = _suite_arch(args, p_suite)
    mirror = args.mirror or p_mirror  # None: this machine's apt sources, recorded as null
    packages = packages_with_defaults([*p_packages, *args.package])
    extra = tuple((name, url or None) for name, _, url in (text.partition("=") for text in args.extra_suite))
    inputs = BaseInputs(suite, arch, mirror, packages, excluded=tuple(sorted(set(args.exclude))), extra_suites=extra)
    path = args.lock or default_lock_path(project, suite, arch)
    cache = DebCache(args.cache or default_cache_dir())
    if args.check:
        lock = check_lock(path, inputs, cache, DEFAULT_KEYRING)
        data(f"{path} is current ({len(lock.packages)} packages, Release sha256 {lock.release['sha256']})")
        return 0
    where = redact(mirror) if mirror else f"this machine's apt mirror ({default_mirror(suite)})"
    also = "".join(f" + {name}" for name, _ in extra)
    log(f"resolving {', '.join(inputs.packages)} from {redact(where)} {suite}{also}/{arch}", quiet=args.quiet)
    lock = make_lock(inputs, cache, DEFAULT_KEYRING)
    if lock.release["signature"].startswith("not verified"):
        log(f"warning: the Release file was {lock.release['signature']}", quiet=args.quiet)
    write_lock(path, lock)
    size = sum(p.size for p in lock.packages)
    log(f"locked {path}: {len(lock.packages)} packages, {size / 1e6:.1f} MB of .deb files", quiet=args.quiet)
    data(str(path))
    return 0


def run_build(args: argparse.Namespace) -> int:
    project = args.project.resolve()
    has_config = (project / "pyproject.toml").is_file()
    p_suite, p_mirror, p_packages = _project_defaults(project)
    suite, arch = _suite_arch(args, p_suite)
    path = args.lock or default_lock_path(project, suite, arch)
    if has_config:
        # A lock made for other inputs than the project's config is refused, offline (apko's checksum).
        # Extra suites are not part of the config (only of `base lock --extra-suite`): take the lock's.
        recorded = read_lock(path).inputs.get("extra_suites", [])
        extra = tuple((str(x["suite"]), x["mirror"]) for x in recorded)
        inputs = BaseInputs(suite, arch, p_mirror, packages_with_defaults(p_packages), extra_suites=extra)
        lock = check_inputs(path, inputs)
    else:
        lock = read_lock(path)
    epoch = parse_epoch(args.epoch, "--epoch") if args.epoch is not None else None
    output = make_output_dir(args.output or project / "build" / "base")
    cache = DebCache(args.cache or default_cache_dir())
    with progress_for_cli(args.quiet) as progress:
        built = build_base(
            lock,
            cache=cache,
            store=BlobStore(output / "oci"),
            epoch=epoch,
            mirror=args.mirror,
            offline=args.offline,
            compressor=Compressor.parse(args.compression),
            progress=progress,
        )
    outputs = write_outputs(built, output, suite=str(lock.inputs["suite"]), arch=str(lock.inputs["arch"]))
    log(f"wrote {outputs.layout} and {outputs.archive} (`docker load -i` gives {outputs.repo_tag})", quiet=args.quiet)
    data(str(built.image.digest))
    return 0
