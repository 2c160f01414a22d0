"""A base lock to an OCI image: fetch (or take from the cache) every pinned ``.deb``, unpack, write.

The base is **one layer**: it changes as a whole whenever the lock changes (a security update of
libc touches everything that links it), so splitting it would add layers without saving pushes;
the project's own layers go on top of it. The layer is written by the OCI core's canonical tar
writer with ``preserve_metadata=True`` so that the packaged permission bits (``/tmp`` 1777,
``/root`` 0700) and ``/home/nonroot``'s owner survive; :mod:`reprobuild.base.debian.rootfs` has
already normalised owners to 0:0 and dropped setuid/setgid bits.

The build epoch defaults to the Release file's ``Date``: the base then depends only on its lock,
not on the project's commit, and every packaged mtime (all older) is kept.

Offline: with a warm cache, :func:`build_base` makes no network request (``offline=True`` refuses
to try, so a missing or tampered cache entry is an error instead of a download).
"""

from __future__ import annotations

import datetime
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprobuild.base.debian.deb import Deb, read_deb
from reprobuild.base.debian.fetch import DebCache, sha256_hex
from reprobuild.base.debian.lock import BaseLock, LockedDeb
from reprobuild.base.debian.rootfs import assemble_rootfs
from reprobuild.errors import BaseImageError, DigestMismatchError, ReproBuildError
from reprobuild.fsutil import atomic_write_text, human_json_text
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor, default_workers
from reprobuild.oci.image import Image, default_config, new_image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.values import Platform

#: Debian architecture -> OCI platform (Debian's names differ for 32-bit ARM, x86 and ppc64el).
_PLATFORMS: dict[str, Platform] = {
    "amd64": Platform("linux", "amd64"),
    "arm64": Platform("linux", "arm64", "v8"),
    "armhf": Platform("linux", "arm", "v7"),
    "armel": Platform("linux", "arm", "v5"),
    "i386": Platform("linux", "386"),
    "ppc64el": Platform("linux", "ppc64le"),
    "s390x": Platform("linux", "s390x"),
    "riscv64": Platform("linux", "riscv64"),
}

#: The image's environment: Debian's default PATH and the C.UTF-8 locale built into glibc.
BASE_ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
)

#: Parallel downloads on a cold cache: enough to hide latency, few enough to be polite to a mirror.
DOWNLOAD_WORKERS = 4


def platform_for(arch: str) -> Platform:
    """The OCI platform of a Debian architecture."""
    try:
        return _PLATFORMS[arch]
    except KeyError:
        raise BaseImageError(
            f"no OCI platform is known for the Debian architecture `{arch}`",
            hint="use one of " + ", ".join(sorted(_PLATFORMS)),
        ) from None


@dataclass(frozen=True)
class BaseBuild:
    """The built base image and its build info (what was dropped or generated, and from what)."""

    image: Image
    info: dict[str, Any]


def fetch_debs(
    lock: BaseLock,
    cache: DebCache,
    *,
    mirror: str | None = None,
    offline: bool = False,
    progress: Progress = NO_PROGRESS,
) -> list[tuple[LockedDeb, Path]]:
    """The verified cache entry of every locked ``.deb``: from the cache, else downloaded from the mirror
    of its suite (``mirror`` replaces the main suite's, e.g. to add credentials the lock never holds).
    """
    main = str(lock.inputs["suite"])

    def get(deb: LockedDeb) -> tuple[LockedDeb, Path]:
        what = f"{deb.name} {deb.version} ({deb.filename})"
        cached = cache.peek(deb.sha256, deb.size, what)
        if cached is not None:  # a warm cache needs no mirror, not even this machine's apt sources
            return deb, cached
        base = (mirror if mirror and deb.suite == main else lock.mirror_for(deb.suite)).rstrip("/")
        return deb, cache.get(deb.sha256, deb.size, f"{base}/{deb.filename}", what, offline=offline, progress=progress)

    with ThreadPoolExecutor(DOWNLOAD_WORKERS) as pool:
        return list(pool.map(get, lock.packages))


def build_base(
    lock: BaseLock,
    *,
    cache: DebCache,
    store: BlobStore,
    epoch: int | None = None,
    mirror: str | None = None,
    offline: bool = False,
    compressor: Compressor | None = None,
    workers: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> BaseBuild:
    """Build the base image of ``lock``; its one layer blob is written into ``store``.

    ``epoch`` defaults to the lock's Release date; ``mirror`` (which may carry credentials)
    overrides the lock's mirror for downloads; ``compressor`` defaults to gzip (what every
    engine loads). The result depends only on the lock, the epoch and the compressor.
    """
    seconds = lock.release_epoch if epoch is None else epoch

    def read(item: tuple[LockedDeb, Path]) -> tuple[str, Deb]:
        locked, path = item
        try:
            # One .deb in memory per worker at a time, checked again as read: the cache is shared.
            data = path.read_bytes()
            if sha256_hex(data) != locked.sha256:
                raise DigestMismatchError(
                    f"the cached file {path} changed after it was verified",
                    hint="another process is writing the cache; build again",
                )
            return locked.name, read_deb(data, f"{locked.name}_{locked.version}.deb")
        except ReproBuildError as e:
            raise e.with_context(f"reading {locked.filename}") from e

    fetched = fetch_debs(lock, cache, mirror=mirror, offline=offline, progress=progress)
    # xz/zstd decompression releases the GIL; the order of the result is the lock's, not the pool's.
    with ThreadPoolExecutor(workers or default_workers()) as pool:
        debs = list(pool.map(read, fetched))
    rootfs = assemble_rootfs(debs, seconds)
    suite, arch = str(lock.inputs["suite"]), str(lock.inputs["arch"])
    layer = write_layer(
        rootfs.entries,
        epoch=seconds,
        compressor=compressor or Compressor.gzip(),
        store=store,
        workers=workers,
        preserve_metadata=True,
        progress=progress,
        description=f"debian {suite} base",
    )
    platform = platform_for(arch)
    config = default_config(platform, seconds)
    config["config"] = {"Cmd": ["python3"], "Env": list(BASE_ENV)}
    created = config["created"]
    config["history"] = [
        {
            "created": created,
            "created_by": f"repro-build base: {len(lock.packages)} Debian packages from {suite}/{arch}, "
            f"Release sha256 {lock.release['sha256']}"
            + "".join(f", {x['suite']} Release sha256 {x['release']['sha256']}" for x in lock.extra_sources),
        }
    ]
    image = new_image(config, [layer])
    info: dict[str, Any] = {
        "compressor": (compressor or Compressor.gzip()).describe(),
        "dropped_setid": list(rootfs.dropped_setid),
        "epoch": seconds,
        "epoch_utc": datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generated": list(rootfs.generated),
        "image_digest": str(image.digest),
        "inputs_checksum": lock.inputs_checksum,
        "layer": {"diff_id": str(layer.diff_id), "digest": str(layer.digest), "size": layer.size},
        "packages": [f"{d.name}={d.version}" for d in lock.packages],
        "release_sha256": lock.release["sha256"],
        "skipped_devices": list(rootfs.skipped_devices),
    }
    return BaseBuild(image, info)


def write_build_info(path: Path, build: BaseBuild) -> None:
    """Write the build info as human JSON (atomic)."""
    atomic_write_text(path, human_json_text(build.info))


@dataclass(frozen=True)
class BaseOutputs:
    """Where :func:`write_outputs` put the base: an OCI layout, a docker-loadable archive, the info."""

    layout: Path
    archive: Path
    info: Path
    repo_tag: str


def repo_tag_for(suite: str, arch: str) -> str:
    """The name the archive carries for ``docker load`` (``repro-build-base:<suite>-<arch>``)."""
    return f"repro-build-base:{suite}-{arch}"


def write_outputs(build: BaseBuild, output_dir: Path, *, suite: str, arch: str) -> BaseOutputs:
    """Write ``output_dir/oci`` (layout, tag ``<suite>-<arch>``), ``output_dir/base-<suite>-<arch>.tar``
    (OCI layout + ``docker load`` archive in one file) and ``output_dir/build-info.json``.
    """
    from reprobuild.oci.archive import write_archive
    from reprobuild.oci.layout import write_layout

    tag = f"{suite}-{arch}"
    layout = output_dir / "oci"
    write_layout(layout, build.image, tag=tag)
    archive = output_dir / f"base-{suite}-{arch}.tar"
    repo_tag = repo_tag_for(suite, arch)
    write_archive(archive, build.image, repo_tags=[repo_tag])
    info = output_dir / "build-info.json"
    write_build_info(info, build)
    return BaseOutputs(layout, archive, info, repo_tag)
