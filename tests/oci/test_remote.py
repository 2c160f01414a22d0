"""Registry source/sink over the real loopback `docker-registry`: round trips and hostile registries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reprobuild.errors import DigestMismatchError, OCIError, ReproBuildError
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.image import Image, default_config, new_image
from reprobuild.oci.index import Index, new_index
from reprobuild.oci.layout import read_layout, write_layout
from reprobuild.oci.registry import RegistryClient
from reprobuild.oci.remote import pull, push
from reprobuild.oci.values import Platform
from tests.oci.helpers import EPOCH, small_image
from tests.oci.registry.servers import Exchange, Upstream, is_blob_get, proxy_to
from tests.testbed import Registry

pytestmark = pytest.mark.registry


def test_layout_registry_layout_round_trip(registry: Registry, tmp_path: Path) -> None:
    img = small_image(tmp_path / "staging")
    write_layout(tmp_path / "a", img, tag="v1")
    src = read_layout(tmp_path / "a", tag="v1")
    client = RegistryClient(registry.host)
    assert push(client, "rt/small", src, tags=["v1"]) == img.digest
    # Pushing again uploads nothing new (blobs exist) and keeps the digest.
    assert push(client, "rt/small", src, tags=["v1"]) == img.digest
    for ref in ("v1", str(img.digest)):
        got = pull(client, "rt/small", ref, BlobStore(tmp_path / f"pull-{ref[:6]}"))
        assert isinstance(got, Image)
        assert got.digest == img.digest and got.config_bytes == img.config_bytes
        assert [layer.digest for layer in got.layers] == [layer.digest for layer in img.layers]
        write_layout(tmp_path / "b", got, tag="v1")
    assert read_layout(tmp_path / "b", tag="v1").digest == img.digest


def test_index_push_and_platform_pull(registry: Registry, tmp_path: Path) -> None:
    amd = small_image(tmp_path / "s1", b"amd\n")
    arm_base = small_image(tmp_path / "s2", b"arm\n")
    arm = new_image(default_config(Platform("linux", "arm64"), EPOCH), arm_base.layers)
    idx = new_index([(amd, None), (arm, None)])
    client = RegistryClient(registry.host)
    push(client, "rt/multi", idx, tags=["latest"])
    store = BlobStore(tmp_path / "pull")
    got = pull(client, "rt/multi", "latest", store, platform=Platform.parse("linux/arm64"))
    assert isinstance(got, Image) and got.digest == arm.digest
    # Only the selected platform's blobs were fetched.
    assert not store.has(amd.layers[0].digest)
    whole = pull(client, "rt/multi", str(idx.digest), BlobStore(tmp_path / "all"))
    assert isinstance(whole, Index) and whole.digest == idx.digest
    with pytest.raises(OCIError, match="no image for platform linux/ppc64le"):
        pull(client, "rt/multi", "latest", store, platform=Platform.parse("linux/ppc64le"))


def _flip_blob_bytes(_h: object, exchange: Exchange, upstream: Upstream) -> Upstream | None:
    if is_blob_get(exchange) and upstream.status == 200 and len(upstream.body) > 100:
        body = bytearray(upstream.body)
        body[50] ^= 0xFF
        return Upstream(upstream.status, upstream.headers, bytes(body))
    return None


def test_registry_serving_wrong_bytes(registry: Registry, tmp_path: Path) -> None:
    img = small_image(tmp_path / "staging", b"wrong bytes test\n")
    push(RegistryClient(registry.host), "rt/wrong", img, tags=["v1"])
    store = BlobStore(tmp_path / "pull")
    with proxy_to(registry.host, _flip_blob_bytes) as proxy:
        client = RegistryClient(proxy.host, retries=1)
        with pytest.raises(DigestMismatchError) as e:
            pull(client, "rt/wrong", "v1", store)
    assert "sha256:" in e.value.message
    # No corrupt cache entry, no temp file left behind.
    leftovers = list((tmp_path / "pull").rglob("*"))
    assert not [p for p in leftovers if p.is_file()]


class _CutBlobs:
    """Send half of each blob answer (200 or 206) under a full Content-Length, then close the
    connection: an interrupted download. Cuts at most ``times`` answers."""

    def __init__(self, times: int) -> None:
        self.left = times

    def __call__(self, handler: Any, exchange: Exchange, upstream: Upstream) -> Upstream | str | None:
        if self.left <= 0 or not is_blob_get(exchange) or upstream.status not in (200, 206):
            return None
        if len(upstream.body) < 100:
            return None
        self.left -= 1
        handler.send_response(upstream.status)
        for k, v in upstream.headers:
            if k.lower() in ("content-range", "docker-content-digest", "content-type"):
                handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(upstream.body)))
        handler.end_headers()
        handler.wfile.write(upstream.body[: len(upstream.body) // 2])
        handler.wfile.flush()
        return "handled"


def test_interrupted_download_is_resumed_or_fails_cleanly(registry: Registry, tmp_path: Path) -> None:
    img = small_image(tmp_path / "staging", b"interrupted test\n")
    push(RegistryClient(registry.host), "rt/cut", img, tags=["v1"])
    # Interrupted once: the client resumes or retries, and what lands in the store is verified.
    store = BlobStore(tmp_path / "once")
    with proxy_to(registry.host, _CutBlobs(times=1)) as proxy:
        got = pull(RegistryClient(proxy.host, retries=2), "rt/cut", "v1", store)
    assert got.digest == img.digest
    assert all(store.has(layer.digest) for layer in img.layers)
    # Interrupted every time: one clear error, and nothing half-written in the store.
    with proxy_to(registry.host, _CutBlobs(times=1000)) as proxy, pytest.raises(ReproBuildError) as e:
        pull(RegistryClient(proxy.host, retries=1), "rt/cut", "v1", BlobStore(tmp_path / "always"))
    assert "rt/cut" in e.value.message or "sha256:" in e.value.message
    assert not [p for p in (tmp_path / "always").rglob("*") if p.is_file()]


def test_manifest_digest_mismatch_is_refused(registry: Registry, tmp_path: Path) -> None:
    img = small_image(tmp_path / "staging", b"digest ref\n")
    client = RegistryClient(registry.host)
    push(client, "rt/ref", img, tags=["v1"])
    other = "sha256:" + "0" * 64
    with pytest.raises(ReproBuildError):
        pull(client, "rt/ref", other, BlobStore(tmp_path / "pull"))


def test_index_with_attestation_round_trip(registry: Registry, tmp_path: Path) -> None:
    """An index holding an image and an in-toto attestation manifest is copied whole, digests kept."""
    from reprobuild.oci.archive import read_archive, write_archive
    from reprobuild.oci.index import select_platform
    from reprobuild.oci.validate import validate_image, validate_layout
    from tests.oci.helpers import attestation_manifest

    img = small_image(tmp_path / "s1", b"attested\n")
    att = attestation_manifest(tmp_path / "s1", img)
    assert att.is_artifact and not img.is_artifact
    idx = new_index([(img, None), (att, Platform("unknown", "unknown"))])
    client = RegistryClient(registry.host)
    push(client, "rt/attested", idx, tags=["v1"])
    got = pull(client, "rt/attested", "v1", BlobStore(tmp_path / "pull"))
    assert isinstance(got, Index) and got.digest == idx.digest
    validate_image(got)
    write_layout(tmp_path / "layout", got, tag="v1")
    validate_layout(tmp_path / "layout")
    assert select_platform(got, Platform.parse("linux/amd64")).digest == img.digest
    write_archive(tmp_path / "a.tar", got, repo_tags=["example.test/attested:v1"])
    back = read_archive(tmp_path / "a.tar", tmp_path / "read")
    assert back.digest == idx.digest
    import json
    import tarfile

    with tarfile.open(tmp_path / "a.tar") as tf:
        docker_manifest = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
    # Only the runnable image is offered to `docker load`; the attestation stays in the OCI part.
    assert [e["Config"] for e in docker_manifest] == [f"blobs/sha256/{img.config_digest.hex}"]
