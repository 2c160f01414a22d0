"""Broken and hostile registries: wrong bytes, dropped connections, transient failures.

Each case puts an in-test proxy (127.0.0.1) in front of the real registry and makes it misbehave.
"""

from __future__ import annotations

import base64
import io
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from reprobuild.errors import DigestMismatchError, RegistryError
from reprobuild.fsutil import atomic_writer, canonical_json_bytes
from reprobuild.oci.mediatypes import OCI_CONFIG, OCI_MANIFEST
from reprobuild.oci.registry import Credentials, CredentialStore, RegistryClient
from tests.oci.registry.servers import Exchange, Upstream, _ProxyHandler, header, is_blob_get, proxy_to, sha256
from tests.testbed import Registry

pytestmark = pytest.mark.registry


def _opener(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


def _config_only() -> tuple[bytes, bytes]:
    """A config and an image manifest of it with no layer."""
    config = canonical_json_bytes({"os": "linux"})
    manifest = canonical_json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [],
        }
    )
    return config, manifest


def _client(host: str, retries: int = 3) -> RegistryClient:
    return RegistryClient(host, credentials=CredentialStore.anonymous(), retries=retries, backoff=0.01)


def _seeded(registry: Registry, size: int = 200_000) -> tuple[str, bytes]:
    repo = f"test/hostile-{uuid.uuid4().hex[:8]}"
    data = os.urandom(size)
    _client(registry.host).put_blob(repo, sha256(data), len(data), _opener(data))
    return repo, data


class _Once:
    """Misbehave on the first ``times`` matching requests, then pass the registry's answers through."""

    def __init__(self, times: int = 1) -> None:
        self.left = times

    def take(self) -> bool:
        if self.left > 0:
            self.left -= 1
            return True
        return False


def test_wrong_bytes_raise_and_leave_nothing(registry: Registry, tmp_path: Path) -> None:
    repo, data = _seeded(registry)

    def flip(handler: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | None:
        if is_blob_get(exchange) and upstream.status == 200:
            body = bytearray(upstream.body)
            body[len(body) // 2] ^= 0xFF  # same size, one byte different
            return Upstream(200, upstream.headers, bytes(body))
        return None

    with proxy_to(registry.host, flip) as proxy:
        client = _client(proxy.host)
        final = tmp_path / "layer.tar.gz"
        with pytest.raises(DigestMismatchError) as e, atomic_writer(final) as f:
            client.get_blob(repo, sha256(data), f, size=len(data))
    assert f"{proxy.host}/{repo}@{sha256(data)}" in e.value.message
    assert list(tmp_path.iterdir()) == []  # no final file, no temp file


def test_extra_bytes_are_refused_while_streaming(registry: Registry) -> None:
    repo, data = _seeded(registry)

    def grow(handler: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | None:
        if is_blob_get(exchange):
            return Upstream(200, upstream.headers, upstream.body + b"tail")
        return None

    with proxy_to(registry.host, grow) as proxy:
        out = io.BytesIO()
        with pytest.raises(DigestMismatchError, match="bytes"):
            _client(proxy.host).get_blob(repo, sha256(data), out, size=len(data))
        # Without an expected size the digest still catches it.
        with pytest.raises(DigestMismatchError, match="digest"):
            _client(proxy.host).get_blob(repo, sha256(data), io.BytesIO())


def _drop_midway(once: _Once) -> Callable[[_ProxyHandler, Exchange, Upstream], Upstream | str | None]:
    """Announce the full length, send half the blob, close the connection."""

    def hook(handler: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | str | None:
        if is_blob_get(exchange) and upstream.status in {200, 206} and once.take():
            handler.send_response(upstream.status)
            for name in ("Content-Type", "Content-Range"):
                value = header(upstream, name)
                if value is not None:
                    handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(upstream.body)))
            handler.end_headers()
            handler.wfile.write(upstream.body[: len(upstream.body) // 2])
            handler.wfile.flush()
            return "handled"
        return None

    return hook


def test_dropped_download_resumes_with_range(registry: Registry) -> None:
    repo, data = _seeded(registry)
    with proxy_to(registry.host, _drop_midway(_Once())) as proxy:
        out = io.BytesIO()
        _client(proxy.host).get_blob(repo, sha256(data), out, size=len(data))
    assert out.getvalue() == data
    gets = [e for e in proxy.seen if is_blob_get(e)]
    assert len(gets) == 2
    assert gets[1].headers.get("range") == f"bytes={len(data) // 2}-"  # resumed, not restarted


def test_dropped_download_without_range_support(registry: Registry) -> None:
    repo, data = _seeded(registry)
    full = {"body": b""}
    once = _Once()
    drop = _drop_midway(once)

    def hook(handler: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | str | None:
        if is_blob_get(exchange) and upstream.status == 200:
            full["body"] = upstream.body
        if is_blob_get(exchange) and upstream.status == 206:
            # Ignore the Range header: send everything again with 200.
            return Upstream(200, [("Content-Type", "application/octet-stream")], full["body"])
        return drop(handler, exchange, upstream)

    with proxy_to(registry.host, hook) as proxy:
        # A seekable destination is rewound and the download starts over.
        out = io.BytesIO(b"prefix:")
        out.seek(0, io.SEEK_END)
        _client(proxy.host).get_blob(repo, sha256(data), out, size=len(data))
        assert out.getvalue() == b"prefix:" + data

        # A pipe-like destination cannot be rewound: a clean error, no silent corruption.
        once.left = 1
        sink = _Unseekable()
        with pytest.raises(RegistryError, match="cannot resume") as e:
            _client(proxy.host).get_blob(repo, sha256(data), cast(BinaryIO, sink), size=len(data))
        assert sha256(data) in e.value.message


class _Unseekable(io.RawIOBase):
    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: object) -> int:
        chunk = bytes(b)  # type: ignore[call-overload]
        self.data += chunk
        return len(chunk)


def test_connection_dropping_every_time_fails_cleanly(registry: Registry) -> None:
    repo, data = _seeded(registry)
    with (
        proxy_to(registry.host, _drop_midway(_Once(times=100))) as proxy,
        pytest.raises(RegistryError, match="dropped") as e,
    ):
        _client(proxy.host, retries=2).get_blob(repo, sha256(data), io.BytesIO(), size=len(data))
    assert sha256(data) in e.value.message
    # Bounded: the first try and two retries, each resuming where the last one stopped.
    gets = [e for e in proxy.seen if is_blob_get(e)]
    assert len(gets) == 3
    half, quarter = len(data) // 2, (len(data) - len(data) // 2) // 2
    assert [g.headers.get("range") for g in gets] == [None, f"bytes={half}-", f"bytes={half + quarter}-"]


def _fail(
    status: int, once: _Once, match: Callable[[Exchange], bool], retry_after: str | None = None
) -> Callable[[_ProxyHandler, Exchange, Upstream], Upstream | None]:
    def hook(handler: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | None:
        if match(exchange) and once.take():
            headers = [("Content-Type", "application/json")]
            if retry_after is not None:
                headers.append(("Retry-After", retry_after))
            return Upstream(status, headers, b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}')
        return None

    return hook


def test_5xx_then_success_is_retried_everywhere(registry: Registry) -> None:
    repo = f"test/flaky-{uuid.uuid4().hex[:8]}"
    data = os.urandom(50_000)
    config, manifest = _config_only()
    # Every request fails once with a 503 (or 502/504/429) before it is let through.
    seen_paths: set[tuple[str, str]] = set()
    statuses = iter([503, 502, 504, 429] * 20)

    def first_time(exchange: Exchange) -> bool:
        key = (exchange.method, exchange.path.split("?")[0].rsplit("/", 1)[0])
        if key in seen_paths:
            return False
        seen_paths.add(key)
        return True

    def hook(handler: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | None:
        if first_time(exchange):
            return Upstream(next(statuses), [("Retry-After", "0")], b"")
        return None

    with proxy_to(registry.host, hook) as proxy:
        client = _client(proxy.host)
        assert client.put_blob(repo, sha256(data), len(data), _opener(data)) is True
        assert client.put_blob(repo, sha256(config), len(config), _opener(config), chunk_size=10) is True
        digest = client.put_manifest(repo, "v1", manifest, OCI_MANIFEST)
        assert client.get_manifest(repo, "v1") == (manifest, OCI_MANIFEST, digest)
        out = io.BytesIO()
        client.get_blob(repo, sha256(data), out, size=len(data))
        assert out.getvalue() == data
        assert client.list_tags(repo) == ["v1"]
    failed = len(seen_paths)
    assert failed >= 6  # HEAD, POST, PUT, PATCH, manifests, tags each failed once


def test_persistent_503_gives_a_bounded_clear_error(registry: Registry) -> None:
    with (
        proxy_to(registry.host, _fail(503, _Once(times=1000), lambda e: True)) as proxy,
        pytest.raises(RegistryError) as e,
    ):
        _client(proxy.host, retries=2).get_manifest("test/down", "latest")
    assert "503" in e.value.message and "after 3 attempts" in e.value.message
    assert f"{proxy.host}/test/down:latest" in e.value.message
    assert len(proxy.seen) == 3


def test_unreachable_registry(tmp_path: Path) -> None:
    from tests.testbed import free_port

    client = _client(f"127.0.0.1:{free_port()}", retries=1)
    with pytest.raises(RegistryError, match="cannot reach") as e:
        client.head_manifest("test/x", "latest")
    assert e.value.hint is not None


def test_tampered_manifest_is_refused(registry: Registry) -> None:
    client = _client(registry.host)
    repo = f"test/tamper-{uuid.uuid4().hex[:8]}"
    config, manifest = _config_only()
    client.put_blob(repo, sha256(config), len(config), _opener(config))
    digest = client.put_manifest(repo, "v1", manifest, OCI_MANIFEST)

    def tamper(handler: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | None:
        if "/manifests/" in exchange.path and exchange.method == "GET":
            assert header(upstream, "Docker-Content-Digest") == digest
            return Upstream(200, upstream.headers, upstream.body.replace(b"linux", b"l1nux") + b" ")
        return None

    with proxy_to(registry.host, tamper) as proxy:
        evil = _client(proxy.host)
        with pytest.raises(DigestMismatchError, match=digest):
            evil.get_manifest(repo, "v1")  # the tag's answer disagrees with Docker-Content-Digest
        with pytest.raises(DigestMismatchError, match="have digest"):
            evil.get_manifest(repo, digest)  # by digest: the bytes do not hash to it


def test_chunked_upload_honours_a_short_range(registry: Registry) -> None:
    """The registry keeps only part of a chunk (the proxy forwards half of it): the client reads the
    ``Range`` answer and sends the rest again from there."""
    repo = f"test/shortrange-{uuid.uuid4().hex[:8]}"
    data = os.urandom(30_000)
    once = _Once()

    def halve(exchange: Exchange, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        if exchange.method == "PATCH" and body and once.take():
            start = int(headers["Content-Range"].split("-")[0])
            kept = body[: len(body) // 2]
            headers = {**headers, "Content-Range": f"{start}-{start + len(kept) - 1}", "Content-Length": str(len(kept))}
            return headers, kept
        return headers, body

    progress: list[int] = []
    with proxy_to(registry.host, before=halve) as proxy:
        client = _client(proxy.host)
        assert client.put_blob(
            repo, sha256(data), len(data), _opener(data), chunk_size=10_000, progress=progress.append
        )
    ranges = [e.headers.get("content-range") for e in proxy.seen if e.method == "PATCH"]
    assert ranges == ["0-9999", "5000-14999", "15000-24999", "25000-29999"]
    assert sum(progress) == len(data)
    out = io.BytesIO()
    _client(registry.host).get_blob(repo, sha256(data), out, size=len(data))
    assert out.getvalue() == data


def test_blob_redirect_to_storage_drops_the_registry_credentials(registry: Registry) -> None:
    """Blob GETs redirected to object storage (another host:port) must not carry ``Authorization``."""
    import http.server

    from tests.oci.registry.servers import serving

    repo, data = _seeded(registry)
    storage_seen: list[str | None] = []

    class Storage(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            storage_seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    secret = "pr0xy-" + uuid.uuid4().hex
    expected = "Basic " + base64.b64encode(f"u:{secret}".encode()).decode()

    with serving(Storage) as storage:

        def gate(handler: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | None:
            # Basic auth in front of the registry, and blobs served from "storage".
            if exchange.headers.get("authorization") != expected:
                return Upstream(401, [("WWW-Authenticate", 'Basic realm="test"')], b"")
            if is_blob_get(exchange):
                return Upstream(307, [("Location", f"http://{storage}/signed?sig=abc")], b"")
            return None

        with proxy_to(registry.host, gate) as proxy:
            store = CredentialStore.static({proxy.host: Credentials("u", secret)})
            client = RegistryClient(proxy.host, credentials=store, backoff=0.01)
            out = io.BytesIO()
            client.get_blob(repo, sha256(data), out, size=len(data))
    assert out.getvalue() == data
    assert storage_seen == [None]
    assert [e.headers.get("authorization") for e in proxy.seen if is_blob_get(e)][-1] == expected


def test_a_manifest_naming_a_blob_the_registry_cannot_read_is_not_called_corrupt(registry: Registry) -> None:
    """The distribution registry answers a manifest ``PUT`` with ``DIGEST_INVALID`` *and*
    ``MANIFEST_BLOB_UNKNOWN`` when it cannot read one of the manifest's blob links (another upload of
    that blob is rewriting it): the error names the missing blob, not bytes that do not match."""
    client = _client(registry.host)
    repo = f"test/bloblink-{uuid.uuid4().hex[:8]}"
    config, manifest = _config_only()
    client.put_blob(repo, sha256(config), len(config), _opener(config))
    # The registry's own answer, as the last CI run logged it.
    unknown = {"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": sha256(config)}
    invalid = {"code": "DIGEST_INVALID", "message": "provided digest did not match uploaded content"}
    body = canonical_json_bytes({"errors": [invalid, unknown]})

    def link_being_rewritten(handler: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | None:
        if "/manifests/" in exchange.path and exchange.method == "PUT":
            return Upstream(400, [("Content-Type", "application/json")], body)
        return None

    with proxy_to(registry.host, link_being_rewritten) as proxy, pytest.raises(RegistryError) as e:
        _client(proxy.host).put_manifest(repo, "v1", manifest, OCI_MANIFEST)
    assert not isinstance(e.value, DigestMismatchError)
    assert "lacks a blob it names" in e.value.message and "MANIFEST_BLOB_UNKNOWN" in e.value.message
    assert e.value.hint is not None and "push again" in e.value.hint
