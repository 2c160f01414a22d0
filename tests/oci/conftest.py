"""Fixtures for the OCI core tests: a locally built Debian rootfs and an image layout made from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image, default_config, new_image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.layout import write_layout
from reprobuild.oci.tarwriter import entries_from_tar
from reprobuild.oci.values import Platform
from tests.oci.rootfs import ROOTFS_EPOCH, RootfsUnavailable, debian_rootfs
from tests.testbed import unavailable


@pytest.fixture(scope="session")
def debian_rootfs_tar() -> Path:
    """``mmdebstrap --variant=essential bookworm`` as a tar, cached under ~/.cache/repro-build-tests/."""
    try:
        return debian_rootfs(variant="essential")
    except RootfsUnavailable as e:
        unavailable("a Debian rootfs (mmdebstrap)", str(e))


@dataclass(frozen=True)
class DebianImage:
    """An image made from the Debian rootfs, stored in an OCI layout under tag ``bookworm``."""

    layout: Path
    image: Image


@pytest.fixture(scope="session")
def debian_image(debian_rootfs_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> DebianImage:
    root = tmp_path_factory.mktemp("debian-layout")
    store = BlobStore(root / "staging")
    layer = write_layer(
        entries_from_tar(debian_rootfs_tar),
        epoch=ROOTFS_EPOCH,
        compressor=Compressor.gzip(),
        store=store,
        preserve_metadata=True,
    )
    cfg = default_config(Platform("linux", "amd64"), ROOTFS_EPOCH)
    cfg["config"] = {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    image = new_image(cfg, [layer])
    layout = root / "layout"
    write_layout(layout, image, tag="bookworm")
    return DebianImage(layout, image)
