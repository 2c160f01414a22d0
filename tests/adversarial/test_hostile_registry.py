"""A hostile registry on loopback: drip-feed and silence end at the deadline; echoed secrets are hidden."""

from __future__ import annotations

import http.server
import time

import pytest

from repro_build.errors import RegistryError
from repro_build.oci.registry.client import RegistryClient
from repro_build.oci.registry.credentials import CredentialStore
from tests.oci.registry.servers import serving

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}'


class _Drip(http.server.BaseHTTPRequestHandler):
    """Announces a manifest, then sends one byte every 0.3 s (each read well inside the read timeout)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Content-Length", str(len(MANIFEST)))
        self.end_headers()
        try:
            for byte in MANIFEST:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass


class _Silent(http.server.BaseHTTPRequestHandler):
    """Accepts the request and never answers."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        time.sleep(30)


def test_drip_feed_ends_at_the_deadline() -> None:
    with serving(_Drip) as host:
        client = RegistryClient(host, credentials=CredentialStore.anonymous(), timeout=(2, 2), deadline=3, retries=0)
        start = time.monotonic()
        with pytest.raises(RegistryError, match="too slowly"):
            client.get_manifest("x", "latest")
        assert time.monotonic() - start < 10  # the whole body would take 30 s


def test_silent_registry_ends_at_the_read_timeout() -> None:
    with serving(_Silent) as host:
        client = RegistryClient(host, credentials=CredentialStore.anonymous(), timeout=(2, 1), deadline=3, retries=5)
        start = time.monotonic()
        with pytest.raises(RegistryError, match="cannot reach"):
            client.get_manifest("x", "latest")
        assert time.monotonic() - start < 15  # retries stop once the deadline has passed


def test_deadlines_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_BUILD_REGISTRY_DEADLINE", "soon")
    with pytest.raises(RegistryError, match="REPRO_BUILD_REGISTRY_DEADLINE"):
        RegistryClient("127.0.0.1:1", credentials=CredentialStore.anonymous())
