"""A hostile registry on loopback: drip-feed and silence end at the deadline; echoed secrets are hidden."""

from __future__ import annotations

import base64
import http.server
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reprobuild.errors import RegistryError
from reprobuild.oci.registry.client import RegistryClient
from reprobuild.oci.registry.credentials import Credentials, CredentialStore
from tests.manifest.schemacheck import sample
from tests.oci.registry.servers import serving

CLI = (sys.executable, "-m", "reprobuild")
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


# ------------------------------------------------------------------ secrets never printed

PASSWORD = "S3cret-pa55"


class _Echo(http.server.BaseHTTPRequestHandler):
    """Asks for Basic auth, then answers 400 with an error body echoing every request header."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        if auth is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="echo"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        raw = auth.split(" ", 1)[1]
        message = f"you sent {auth}, that is {raw} and {raw.rstrip('=')}; {dict(self.headers)!r}"
        body = json.dumps({"errors": [{"code": "DENIED", "message": message}]}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_registry_echoing_the_authorization_header_is_redacted() -> None:
    basic = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    with serving(_Echo) as host:
        creds = CredentialStore.static({host: Credentials("user", PASSWORD)})
        client = RegistryClient(host, credentials=creds, timeout=(2, 2), deadline=5, retries=0)
        with pytest.raises(RegistryError) as e:
            client.get_manifest("x", "latest")
    text = f"{e.value.message} {e.value.hint}"
    assert "DENIED" in text and "<hidden>" in text
    assert PASSWORD not in text and basic not in text and basic.rstrip("=") not in text


def test_credentials_in_a_reference_are_refused_and_never_echoed(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(sample()))
    for ref in (f"user:{PASSWORD}@127.0.0.1:1/x:y", f"docker://user:{PASSWORD}@127.0.0.1:1/x:y"):
        for args in (["verify", str(manifest), "--image", ref], ["inspect", ref], ["copy", ref, "oci-layout:out"]):
            out = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, cwd=tmp_path)
            assert out.returncode == 2, out.stderr
            assert "carries credentials" in out.stderr
            assert PASSWORD not in out.stdout + out.stderr


def test_terminal_escapes_in_messages_are_neutralised(capsys: pytest.CaptureFixture[str]) -> None:
    from reprobuild.cli.output import data, log, print_error

    print_error("layer \x1b]0;pwned\x07name", "hint \x1b[2J")
    log("history \x9b31mred")
    data("diff: \x1b[1A\rhidden\nnext line\ttab")
    out = capsys.readouterr()
    assert "\x1b" not in out.err + out.out and "\x9b" not in out.err and "\r" not in out.out
    assert "\\x1b]0;pwned\\x07name" in out.err and "next line\ttab" in out.out


# ------------------------------------------------------------------ a token realm on another host


def test_which_realms_may_receive_credentials() -> None:
    from reprobuild.oci.registry.auth import realm_may_receive_credentials as may

    # Docker Hub: the API is registry-1.docker.io, its token service auth.docker.io (one registrable domain).
    assert may("registry-1.docker.io", "https://auth.docker.io/token")
    assert may("registry.gitlab.com", "https://gitlab.com/jwt/auth")
    assert may("ghcr.io", "https://ghcr.io/token")
    assert may("127.0.0.1:5000", "http://127.0.0.1:5001/token")  # same host name, another port
    assert not may("registry.example.com", "http://auth.example.com/token")  # same domain, but plain http
    assert not may("registry.co.uk", "https://evil.co.uk/token")  # co.uk is a public suffix
    assert not may("alice.github.io", "https://mallory.github.io/token")  # so is github.io
    assert not may("ghcr.io", "https://collector.example/token")
    assert not may("127.0.0.1:5000", "http://localhost:5001/token")  # another name, even for the same machine
    assert not may("10.0.0.1", "https://10.0.0.2/token")
    assert may("ghcr.io", "https://collector.example/token", frozenset({"collector.example"}))


class _ForeignRealm(http.server.BaseHTTPRequestHandler):
    """A registry whose bearer challenge names a token server on another host; it grants nothing."""

    realm = ""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = b'{"errors":[{"code":"DENIED","message":"no"}]}'
        self.send_response(401)
        self.send_header("WWW-Authenticate", f'Bearer realm="{self.realm}",service="evil"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_foreign_token_realm_never_gets_the_credentials() -> None:
    seen: list[str | None] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = json.dumps({"token": "anonymous-token"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Collector) as collector:
        port = collector.rsplit(":", 1)[1]
        handler = type("Handler", (_ForeignRealm,), {"realm": f"http://localhost:{port}/token"})
        with serving(handler) as host:
            creds = CredentialStore.static({host: Credentials("user", PASSWORD)})
            client = RegistryClient(host, credentials=creds, timeout=(2, 2), deadline=5, retries=0, trusted_realms=())
            with pytest.raises(RegistryError) as e:
                client.get_manifest("x", "latest")
            assert seen == [None]  # asked anonymously
            text = f"{e.value.message} {e.value.hint}"
            assert "not authorized" in text and "localhost" in text and "REPRO_BUILD_REGISTRY_TRUSTED_REALMS" in text
            assert PASSWORD not in text

            # Trusted by the user: the same server now receives them.
            trusting = RegistryClient(
                host, credentials=creds, timeout=(2, 2), deadline=5, retries=0, trusted_realms=["localhost"]
            )
            with pytest.raises(RegistryError):
                trusting.get_manifest("x", "latest")
            basic = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
            assert seen[1:] == [basic]
