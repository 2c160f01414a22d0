"""The base's package inventory is remembered per base and base lock, sealed with the machine's cache key."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from reprobuild.attest.sbom import base_inventory
from reprobuild.image.inventorycache import cached_base_inventory, inventory_key
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image, default_config, new_image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Platform

STATUS = b"""\
Package: libfoo1
Status: install ok installed
Architecture: amd64
Source: libfoo
Version: 2.0-1

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
"""


@pytest.fixture(autouse=True)
def key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("REPRO_BUILD_CACHE_KEY", raising=False)


def base(tmp_path: Path, licence: str = "MIT") -> Image:
    layer = write_layer(
        [
            LayerEntry.file("/etc/os-release", b'ID=debian\nVERSION_CODENAME=bookworm\nPRETTY_NAME="Debian 12"\n'),
            LayerEntry.file("/var/lib/dpkg/status", STATUS),
            LayerEntry.file(
                "/usr/share/doc/libfoo1/copyright",
                f"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
                f"Files: *\nCopyright: 2020 Someone\nLicense: {licence}\n".encode(),
            ),
        ],
        epoch=0,
        compressor=Compressor.gzip(),
        store=BlobStore(tmp_path / "blobs"),
    )
    return new_image(default_config(Platform("linux", "amd64"), 0), [layer])


def lock(tmp_path: Path, sha: str) -> Path:
    path = tmp_path / f"base-{sha[:4]}.json"
    entry = {"name": "libfoo1", "version": "2.0-1", "architecture": "amd64", "sha256": sha, "filename": "pool/x.deb"}
    path.write_text(json.dumps({"packages": [entry]}))
    return path


def entries(root: Path) -> list[Path]:
    return sorted((root / "baseinfo").glob("inventory-*.json"))


def test_the_inventory_is_read_once_and_equals_a_fresh_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image, pinned = base(tmp_path), lock(tmp_path, "ab" * 32)
    root = tmp_path / "cache"
    first = cached_base_inventory(image, pinned, root=root)
    assert first == base_inventory(image, pinned)
    [pkg] = first.packages
    assert (pkg.name, pkg.license, pkg.sha256) == ("libfoo1", "MIT", "ab" * 32)
    assert len(entries(root)) == 1

    def unread(*args: object) -> object:
        raise AssertionError("the base was read again")

    monkeypatch.setattr("reprobuild.attest.sbom.base_inventory", unread)
    assert cached_base_inventory(image, pinned, root=root) == first


def test_another_base_lock_or_base_is_another_entry(tmp_path: Path) -> None:
    image, root = base(tmp_path), tmp_path / "cache"
    one, other = lock(tmp_path, "ab" * 32), lock(tmp_path, "cd" * 32)
    assert cached_base_inventory(image, one, root=root).packages[0].sha256 == "ab" * 32
    assert cached_base_inventory(image, other, root=root).packages[0].sha256 == "cd" * 32
    assert cached_base_inventory(image, None, root=root).packages[0].sha256 is None
    gpl = base(tmp_path / "gpl", licence="GPL-2+")
    assert cached_base_inventory(gpl, one, root=root).packages[0].license == "GPL-2.0-or-later"
    assert len(entries(root)) == 4
    assert len({inventory_key(image, one), inventory_key(image, other), inventory_key(gpl, one)}) == 3


def test_an_entry_not_sealed_by_this_machine_is_evicted_and_the_base_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    image, pinned, root = base(tmp_path), lock(tmp_path, "ab" * 32), tmp_path / "cache"
    truth = cached_base_inventory(image, pinned, root=root)
    [entry] = entries(root)
    data = json.loads(entry.read_text())
    data["payload"]["packages"][0]["license"] = "Apache-2.0"  # an edit without the key
    entry.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        assert cached_base_inventory(image, pinned, root=root) == truth
    assert "is not sealed by this machine" in caplog.text
    # Another machine's key: the entry is not taken either.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "another-machine"))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert cached_base_inventory(image, pinned, root=root) == truth
    assert "is not sealed by this machine" in caplog.text


def test_verify_reads_the_base_every_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image, root = base(tmp_path), tmp_path / "cache"
    cached_base_inventory(image, None, root=root)
    calls: list[object] = []

    def counted(*args: object) -> object:
        calls.append(args)
        return base_inventory(*args)  # type: ignore[arg-type]

    monkeypatch.setattr("reprobuild.attest.sbom.base_inventory", counted)
    cached_base_inventory(image, None, root=root, use_cache=False)
    assert len(calls) == 1
