"""RegistryClient against the real loopback registry (Debian ``docker-registry``): blobs, manifests, tags."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from reprobuild.errors import DigestMismatchError, RegistryError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.oci.mediatypes import DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST
from reprobuild.oci.registry import ALL_MANIFEST_TYPES, CredentialStore, RegistryClient
from tests.oci.registry.servers import proxy_to, sha256
from tests.testbed import Registry

pytestmark = pytest.mark.registry


def _client(registry: Registry) -> RegistryClient:
    return RegistryClient(registry.host, credentials=CredentialStore.anonymous(), backoff=0.01)


def _repo(prefix: str) -> str:
    return f"test/{prefix}-{uuid.uuid4().hex[:8]}"


def _opener(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


def _stored_blob(registry: Registry, digest: str) -> bytes:
    """The bytes the registry wrote to its own storage (distribution's filesystem layout)."""
    hexdigest = digest.split(":", 1)[1]
    path = registry.root / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
    return path.read_bytes()


def _push_image(client: RegistryClient, repo: str, content: bytes) -> tuple[bytes, str]:
    config = canonical_json_bytes(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    )
    client.put_blob(repo, sha256(config), len(config), _opener(config))
    client.put_blob(repo, sha256(content), len(content), _opener(content))
    manifest = canonical_json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(content), "size": len(content)}],
        }
    )
    return manifest, sha256(manifest)


def test_blob_monolithic_push_then_skip_then_verified_get(registry: Registry) -> None:
    client = _client(registry)
    repo = _repo("mono")
    data = os.urandom(300_000)
    digest = sha256(data)
    progress: list[int] = []
    assert client.blob_exists(repo, digest) is False
    assert client.put_blob(repo, digest, len(data), _opener(data), progress=progress.append) is True
    assert sum(progress) == len(data)
    assert _stored_blob(registry, digest) == data
    assert client.blob_exists(repo, digest) is True
    # The second push finds the blob (HEAD) and sends nothing.
    assert client.put_blob(repo, digest, len(data), _opener(b"never read")) is False
    out = io.BytesIO()
    got: list[int] = []
    client.get_blob(repo, digest, out, size=len(data), progress=got.append)
    assert out.getvalue() == data
    assert sum(got) == len(data)


def test_blob_chunked_push_uses_several_patches(registry: Registry) -> None:
    repo = _repo("chunked")
    data = os.urandom(250_001)  # not a multiple of the chunk size: the last chunk is short
    digest = sha256(data)
    with proxy_to(registry.host) as proxy:
        client = RegistryClient(proxy.host, credentials=CredentialStore.anonymous())
        assert client.put_blob(repo, digest, len(data), _opener(data), chunk_size=64 * 1024) is True
    ranges = [e.headers.get("content-range") for e in proxy.seen if e.method == "PATCH"]
    assert ranges == ["0-65535", "65536-131071", "131072-196607", "196608-250000"]
    puts = [e.path for e in proxy.seen if e.method == "PUT"]
    assert len(puts) == 1 and f"digest={digest.replace(':', '%3A')}" in puts[0]
    assert _stored_blob(registry, digest) == data
    client = _client(registry)
    out = io.BytesIO()
    client.get_blob(repo, digest, out, size=len(data))
    assert out.getvalue() == data


def test_size_threshold_switches_to_chunked(registry: Registry) -> None:
    client = RegistryClient(registry.host, credentials=CredentialStore.anonymous(), chunk_threshold=1000)
    repo = _repo("threshold")
    data = os.urandom(5000)
    assert client.put_blob(repo, sha256(data), len(data), _opener(data)) is True
    assert _stored_blob(registry, sha256(data)) == data


def test_empty_blob_both_ways(registry: Registry) -> None:
    client = _client(registry)
    for chunk in (None, 1024):
        repo = _repo("empty")
        assert client.put_blob(repo, sha256(b""), 0, _opener(b""), chunk_size=chunk) is True
        out = io.BytesIO()
        client.get_blob(repo, sha256(b""), out, size=0)
        assert out.getvalue() == b""


def test_cross_repository_mount(registry: Registry) -> None:
    client = _client(registry)
    source, dest = _repo("mount-src"), _repo("mount-dst")
    data = os.urandom(10_000)
    client.put_blob(source, sha256(data), len(data), _opener(data))
    opened: list[int] = []

    def opener() -> BinaryIO:
        opened.append(1)
        return io.BytesIO(data)

    assert client.put_blob(dest, sha256(data), len(data), opener, mount_from=source) is True
    assert opened == []  # mounted: no bytes sent
    assert client.blob_exists(dest, sha256(data))


def test_put_blob_refuses_a_source_that_does_not_match(registry: Registry) -> None:
    client = _client(registry)
    repo = _repo("liar")
    data = os.urandom(4096)
    wrong = sha256(b"something else")
    for chunk in (None, 1000):
        with pytest.raises(DigestMismatchError, match=wrong):
            client.put_blob(repo, wrong, len(data), _opener(data), chunk_size=chunk)
        # A source shorter than the declared size is named as such, not sent forever.
        with pytest.raises(DigestMismatchError, match="shorter"):
            client.put_blob(repo, sha256(data), len(data) + 10, _opener(data), chunk_size=chunk)
        assert not client.blob_exists(repo, wrong)


def test_manifest_by_tag_and_digest_exact_bytes(registry: Registry) -> None:
    client = _client(registry)
    repo = _repo("manifest")
    manifest, digest = _push_image(client, repo, b"layer bytes")
    # Deliberately not canonical: whitespace must survive, byte for byte.
    spaced = json.dumps(json.loads(manifest), indent=3).encode() + b"\n"
    spaced_digest = sha256(spaced)
    assert client.put_manifest(repo, "v1", manifest, OCI_MANIFEST) == digest
    assert client.put_manifest(repo, spaced_digest, spaced, OCI_MANIFEST) == spaced_digest
    data, media_type, got = client.get_manifest(repo, "v1")
    assert (data, media_type, got) == (manifest, OCI_MANIFEST, digest)
    data, media_type, got = client.get_manifest(repo, spaced_digest)
    assert (data, media_type, got) == (spaced, OCI_MANIFEST, spaced_digest)
    assert client.head_manifest(repo, "v1") == (digest, OCI_MANIFEST, len(manifest))
    assert client.head_manifest(repo, spaced_digest) == (spaced_digest, OCI_MANIFEST, len(spaced))
    assert client.head_manifest(repo, "missing") is None
    # A digest reference that is not the digest of the bytes is refused before anything is sent.
    with pytest.raises(DigestMismatchError):
        client.put_manifest(repo, digest, spaced, OCI_MANIFEST)


def test_docker_media_type_is_kept(registry: Registry) -> None:
    client = _client(registry)
    repo = _repo("docker")
    manifest, _ = _push_image(client, repo, b"docker layer")
    body = json.loads(manifest)
    body["mediaType"] = DOCKER_MANIFEST
    body["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
    body["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    data = canonical_json_bytes(body)
    digest = client.put_manifest(repo, "d", data, DOCKER_MANIFEST)
    assert client.get_manifest(repo, "d") == (data, DOCKER_MANIFEST, digest)


def test_index_round_trip_and_tags(registry: Registry) -> None:
    client = _client(registry)
    repo = _repo("index")
    entries = []
    for arch in ("amd64", "arm64"):
        manifest, digest = _push_image(client, repo, f"layer for {arch}".encode())
        client.put_manifest(repo, digest, manifest, OCI_MANIFEST)
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(manifest),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = canonical_json_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    digest = client.put_manifest(repo, "multi", index, OCI_INDEX)
    assert digest == sha256(index)
    assert client.get_manifest(repo, "multi") == (index, OCI_INDEX, digest)
    assert client.get_manifest(repo, digest, accept=ALL_MANIFEST_TYPES) == (index, OCI_INDEX, digest)
    client.put_manifest(repo, "also", index, OCI_INDEX)
    assert sorted(client.list_tags(repo)) == ["also", "multi"]


def test_not_found_errors_name_the_artifact_and_hint(registry: Registry) -> None:
    client = _client(registry)
    repo = _repo("absent")
    with pytest.raises(RegistryError) as e:
        client.get_manifest(repo, "nope")
    assert f"{registry.host}/{repo}:nope" in e.value.message
    assert e.value.hint is not None and "tag or digest" in e.value.hint
    missing = sha256(b"missing")
    with pytest.raises(RegistryError) as e:
        client.get_blob(repo, missing, io.BytesIO())
    assert missing in e.value.message and "not found" in e.value.message
    with pytest.raises(RegistryError, match="not a valid repository"):
        client.list_tags("UPPER/case")
    with pytest.raises(RegistryError, match="not a digest"):
        client.blob_exists(repo, "sha256:abc")


def test_get_blob_into_atomic_file(registry: Registry, tmp_path: Path) -> None:
    from reprobuild.fsutil import atomic_writer

    client = _client(registry)
    repo = _repo("atomic")
    data = os.urandom(70_000)
    client.put_blob(repo, sha256(data), len(data), _opener(data))
    final = tmp_path / "blob"
    with atomic_writer(final) as f:
        client.get_blob(repo, sha256(data), f, size=len(data))
    assert final.read_bytes() == data
    # A wrong expected size is caught from Content-Length, before any byte lands.
    with pytest.raises(DigestMismatchError, match="expected 5"), atomic_writer(tmp_path / "bad") as f:
        client.get_blob(repo, sha256(data), f, size=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob"]
