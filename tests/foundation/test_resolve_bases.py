"""`repro-build lock --resolve-bases` against the loopback registry."""

from __future__ import annotations

import functools
import hashlib
import io
import json
from pathlib import Path

import pytest

from reprobuild.cli.main import main
from reprobuild.errors import RegistryError
from reprobuild.lock.bases import resolve_bases
from reprobuild.oci.registry import RegistryClient
from tests.testbed import Registry


def push_tiny_image(registry: Registry, repository: str, tag: str) -> str:
    """Push a one-layer image by tag; return its manifest digest."""
    client = RegistryClient(registry.host)
    layer = b"not really a tar, but the registry does not care"
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    blobs = {}
    for data in (layer, config):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        client.put_blob(repository, digest, len(data), functools.partial(io.BytesIO, data))
        blobs[data] = digest
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": blobs[config],
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blobs[layer], "size": len(layer)}
            ],
        }
    ).encode()
    return client.put_manifest(repository, tag, manifest, "application/vnd.oci.image.manifest.v1+json")


def test_resolve_bases_pins_the_tag_and_keeps_it(registry: Registry, tmp_path: Path) -> None:
    digest = push_tiny_image(registry, "bases/python", "3.11")
    dockerfile = tmp_path / "Dockerfile.base"
    dockerfile.write_text(f"# comment stays\nFROM {registry.host}/bases/python:3.11 AS cpu\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1"\n[tool.repro-build.targets.cpu]\nbase = "cpu"\n'
    )
    assert main(["config", "--project", str(tmp_path)]) == 2  # refused while unpinned
    lines = resolve_bases(tmp_path)
    assert lines == [f"pinned stage 'cpu': {registry.host}/bases/python:3.11 -> {digest}"]
    assert dockerfile.read_text() == f"# comment stays\nFROM {registry.host}/bases/python:3.11@{digest} AS cpu\n"
    assert main(["config", "--project", str(tmp_path)]) == 0
    assert resolve_bases(tmp_path) == ["Dockerfile.base: every stage is already pinned"]


def test_resolve_bases_missing_tag_writes_nothing(registry: Registry, tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile.base"
    original = f"FROM {registry.host}/bases/absent:1 AS cpu\n"
    dockerfile.write_text(original)
    with pytest.raises(RegistryError) as err:
        resolve_bases(tmp_path)
    assert "Dockerfile.base:1" in err.value.message
    assert dockerfile.read_text() == original
