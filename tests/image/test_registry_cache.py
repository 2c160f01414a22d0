"""`image --cache REF`: layers shared through a registry, read back on a machine state with an empty local
cache, checked against their inputs; a tampered entry is rebuilt, never used."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from reprobuild.config import load_config
from reprobuild.errors import ReproBuildError
from reprobuild.image.build import ImageResult, build_image
from reprobuild.image.projectwheel import wheel_step
from reprobuild.image.registrycache import CONFIG_TYPE, MANIFEST_TYPE, cache_reference
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.registry import RegistryClient
from reprobuild.oci.tarwriter import LayerEntry
from tests.testbed import Registry

pytestmark = pytest.mark.network  # the locked wheels come from the package index (then from the cache)


def build(root: Path, ref: str, cache: Path, monkeypatch: pytest.MonkeyPatch) -> ImageResult:
    monkeypatch.setenv("REPRO_BUILD_CACHE", str(cache))
    return build_image(load_config(root), "cpu", project_wheel=wheel_step(), cache_ref=ref)


def layer_tags(registry: Registry, repo: str) -> list[str]:
    with RegistryClient(registry.host) as client:
        return sorted(t for t in client.list_tags(repo) if t.startswith("layer-"))


def test_empty_local_cache_builds_the_same_image_from_the_registry_cache(
    golden_project: Path,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = f"{registry.host}/speed-cache/shared-{tmp_path.name}"
    repo = ref.split("/", 1)[1]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-a"))
    first = build(golden_project, ref, tmp_path / "cache-a", monkeypatch)
    tags = layer_tags(registry, repo)
    assert len(tags) == len(first.layers) - 1  # every layer but the base's
    # Another machine state: another cache key, an empty local cache (the wheels it may fetch again).
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-b"))
    written: list[str] = []

    def spy(entries: list[LayerEntry], **kwargs: Any) -> Layer:
        written.append(str(kwargs.get("description")))
        return write_layer(entries, **kwargs)

    monkeypatch.setattr("reprobuild.image.build.write_layer", spy)
    with caplog.at_level(logging.WARNING):
        second = build(golden_project, ref, tmp_path / "cache-b", monkeypatch)
    assert second.digest == first.digest
    assert written == []  # every layer came from the registry, none was compressed again
    assert "warning" not in caplog.text


def test_tampered_registry_entry_is_rebuilt_not_used(
    golden_project: Path,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = f"{registry.host}/speed-cache/tampered-{tmp_path.name}"
    repo = ref.split("/", 1)[1]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-a"))
    first = build(golden_project, ref, tmp_path / "cache-a", monkeypatch)
    # The attacker re-points every entry at a layer of their own, with a config that claims its diff_id.
    evil = write_layer(
        [LayerEntry.file("/usr/local/lib/python3.11/dist-packages/six.py", b"import os; os.system('evil')\n")],
        epoch=0,
        compressor=Compressor.gzip(),
        store=BlobStore(tmp_path / "evil"),
    )
    config = json.dumps({"diff_id": str(evil.diff_id)}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    with RegistryClient(registry.host) as client:
        client.put_blob(repo, str(evil.digest), evil.size, lambda: evil.path.open("rb"))
        client.put_blob(repo, config_digest, len(config), lambda: io.BytesIO(config))
        for tag in layer_tags(registry, repo):
            data, _, _ = client.get_manifest(repo, tag, accept=[MANIFEST_TYPE])
            manifest = json.loads(data)
            manifest["layers"][0].update(
                digest=str(evil.digest),
                size=evil.size,
                mediaType=evil.media_type,
                annotations={"dev.repro-build.diff-id": str(evil.diff_id)},
            )
            manifest["config"] = {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config)}
            client.put_manifest(repo, tag, json.dumps(manifest).encode(), MANIFEST_TYPE)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-b"))
    with caplog.at_level(logging.WARNING):
        second = build(golden_project, ref, tmp_path / "cache-b", monkeypatch)
    assert second.digest == first.digest
    assert all(layer.digest != str(evil.digest) for layer in second.layers)
    assert caplog.text.count("not what its inputs give") == len(first.layers) - 1
    # The honest layers were pushed over the tampered tags: a third machine state gets them.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-c"))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        third = build(golden_project, ref, tmp_path / "cache-c", monkeypatch)
    assert third.digest == first.digest
    assert "warning" not in caplog.text


def test_unreachable_registry_cache_is_a_warning(
    golden_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.testbed import free_port

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("REPRO_BUILD_REGISTRY_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("REPRO_BUILD_REGISTRY_DEADLINE", "3")
    with caplog.at_level(logging.WARNING):
        result = build(golden_project, f"127.0.0.1:{free_port()}/nobody/home", tmp_path / "cache", monkeypatch)
    assert result.digest.startswith("sha256:")
    assert caplog.text.count("building without it") == 1


@pytest.mark.parametrize("text", ["host.example/cache:tag", "host.example/cache@sha256:" + "0" * 64])
def test_cache_reference_is_a_repository(text: str) -> None:
    with pytest.raises(ReproBuildError, match="a cache is a repository"):
        cache_reference(text)
