"""The embedded Debian base for ``base = "debian:SUITE"`` targets, built from the project's base lock.

The lock is ``locks/base-<suite>-<arch>.json`` (``repro-build lock`` writes it with the Python locks).
A built base depends only on that lock (its epoch is the Release date), so it is cached as an OCI
layout under ``<cache>/bases/<lock sha256>/`` and reused; its layer is re-hashed on every use.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from repro_build.base.debian.build import build_base
from repro_build.base.debian.fetch import DebCache
from repro_build.base.debian.lock import check_inputs, default_lock_path
from repro_build.cache import cache_root
from repro_build.config import Config, Target
from repro_build.errors import BaseImageError, StaleLockError
from repro_build.fsutil import publish_dir
from repro_build.lock.baselock import base_inputs
from repro_build.oci.blobstore import BlobStore
from repro_build.oci.image import Image
from repro_build.oci.layout import read_layout, write_layout


def base_lock_path(config: Config, target: Target) -> Path:
    assert target.base.suite is not None
    return default_lock_path(config.root, target.base.suite, target.arch)


def debian_base(
    config: Config, target: Target, staging: Path, *, offline: bool = False, mirror: str | None = None
) -> tuple[Image, dict[str, Any]]:
    """The base image of ``target`` (a :data:`repro_build.image.base.DebianBuilder`).

    The ``.deb`` files come from the cache, else from ``mirror`` (``--mirror``), else the configured
    ``[tool.repro-build.debian] mirror``, else the mirror the lock records, else this machine's apt
    sources. Any of them gives the same base: every file is checked against the lock's sha256.
    """
    path = base_lock_path(config, target)
    rel = path.relative_to(config.root).as_posix()
    if not path.is_file():
        raise StaleLockError(
            f"target {target.name!r} uses {target.base.text}, but {rel} does not exist",
            hint="run `repro-build lock` (it locks the Debian base too) and commit `locks/`",
        )
    try:
        lock = check_inputs(path, base_inputs(config, target.base.suite or "", target.arch))
    except StaleLockError as e:
        raise StaleLockError(e.message, hint="run `repro-build lock` and commit `locks/`") from e
    lock_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    record = {
        "lock": rel,
        "lock_sha256": f"sha256:{lock_sha}",
        "release_sha256": lock.release.get("sha256"),
        "snapshot": lock.snapshot,
        "suite": target.base.suite,
    }
    cached = cache_root() / "bases" / lock_sha
    if (cached / "oci" / "index.json").is_file():
        artifact = read_layout(cached / "oci")
        if isinstance(artifact, Image):
            return artifact, record
    with tempfile.TemporaryDirectory(prefix=".base-", dir=staging.parent) as tmp:
        built = build_base(
            lock,
            cache=DebCache(cache_root()),
            store=BlobStore(Path(tmp) / "store"),
            mirror=mirror or config.debian.mirror,
            offline=offline,
        )
        out = Path(tmp) / "final"
        write_layout(out / "oci", built.image)
        publish_dir(out, cached)  # the build directory and the cache may be on different file systems
    artifact = read_layout(cached / "oci")
    if not isinstance(artifact, Image):
        raise BaseImageError(f"the cached Debian base in {cached} is not an image", hint=f"remove {cached}")
    return artifact, record
