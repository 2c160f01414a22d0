"""The base inventory the SBOMs list is remembered per base and lock, sealed, and re-read when tampered with."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from reprobuild.attest.inventory import BaseInventory, DebPackage, OsInfo
from reprobuild.image.inventorycache import cached_base_inventory, from_payload, to_payload
from tests.oci.helpers import small_image

INVENTORY = BaseInventory(
    OsInfo("debian", "bookworm", "Debian GNU/Linux 12 (bookworm)"),
    (
        DebPackage("base-files", "12.4+deb12u5", "amd64", None, "GPL-2.0-or-later", "a" * 64, "pool/b/base-files.deb"),
        DebPackage("libc6", "2.36-9", "amd64", "glibc", None),
    ),
)


def test_round_trip() -> None:
    assert from_payload(json.loads(json.dumps(to_payload(INVENTORY)))) == INVENTORY
    assert from_payload({"os": None, "packages": [{"name": "x"}]}) is None


def test_remembered_sealed_and_reread_when_tampered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("REPRO_BUILD_CACHE_KEY", raising=False)
    reads: list[Any] = []

    def read_base(layers: Any, *, lock: Any = None) -> BaseInventory:
        reads.append(lock)
        return INVENTORY

    monkeypatch.setattr("reprobuild.image.inventorycache.read_base", read_base)
    image = small_image(tmp_path / "store")
    root = tmp_path / "cache"
    for _ in range(2):
        assert cached_base_inventory(image, lock={"l": 1}, lock_bytes=b"lock", root=root) == INVENTORY
    assert reads == [{"l": 1}]
    [entry] = (root / "baseinfo").glob("inventory-*.json")
    data = json.loads(entry.read_text())
    data["payload"]["packages"][1]["license"] = "MIT"  # a forged licence, the old seal kept
    entry.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        assert cached_base_inventory(image, lock={"l": 1}, lock_bytes=b"lock", root=root) == INVENTORY
    assert "not sealed by this machine" in caplog.text and len(reads) == 2
    cached_base_inventory(image, lock={"l": 2}, lock_bytes=b"another lock", root=root)
    assert len(reads) == 3  # another lock is another key
