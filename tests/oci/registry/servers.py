"""In-test HTTP servers on 127.0.0.1: a scriptable proxy in front of the real registry, and a token server.

Every server binds 127.0.0.1 on a free port, runs in a daemon thread, and stops when its context
manager exits or, at the latest, after ``lifetime`` seconds (so a hung test cannot leave it behind).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.testbed import RegistryProcess, start_registry

#: No in-test server outlives this many seconds.
LIFETIME_S = 120.0

# Hop-by-hop headers a proxy must not forward (RFC 9110 §7.6.1), plus what http.server sets itself.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "server", "date"}


@dataclass
class Exchange:
    """One request as the proxy saw it, for tests to assert on (no bodies, no auth values)."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Upstream:
    """The real registry's answer, which a hook may pass on, alter, or replace."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


#: Runs before forwarding: may rewrite the request's headers and body (e.g. to truncate a PATCH).
Before = Callable[["Exchange", dict[str, str], bytes], tuple[dict[str, str], bytes]]

#: A hook sees the request and the upstream answer; it returns the answer to send, or None to send
#: ``upstream`` unchanged. It may also write to ``handler.wfile`` itself and return ``"handled"``.
Hook = Callable[["_ProxyHandler", Exchange, Upstream], "Upstream | str | None"]


@dataclass
class Proxy:
    """A proxy in front of the real registry with a hook to misbehave; ``host`` is ``127.0.0.1:PORT``."""

    host: str
    upstream: str
    hook: Hook | None = None
    before: Before | None = None
    seen: list[Exchange] = field(default_factory=list)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: Proxy  # set on the subclass per server

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        exchange = Exchange(self.command, self.path, {k.lower(): v for k, v in headers.items()})
        self.proxy.seen.append(exchange)
        if self.proxy.before is not None:
            headers, body = self.proxy.before(exchange, headers, body)
        conn = http.client.HTTPConnection(self.proxy.upstream, timeout=30)
        try:
            # The Host header is passed on unchanged, so the registry builds Location URLs that
            # point back at the proxy.
            conn.request(self.command, self.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            upstream = Upstream(answer.status, list(answer.getheaders()), answer.read())
        finally:
            conn.close()
        result = self.proxy.hook(self, exchange, upstream) if self.proxy.hook else None
        if result == "handled":
            self.close_connection = True
            return
        out = result if isinstance(result, Upstream) else upstream
        self.send_response(out.status)
        for k, v in out.headers:
            if k.lower() not in _HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(out.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 in a daemon thread; yield ``127.0.0.1:PORT``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    # The safety net: shut down after LIFETIME_S even if the test hangs.
    timer = threading.Timer(LIFETIME_S, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        timer.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def proxy_to(upstream: str, hook: Hook | None = None, before: Before | None = None) -> Iterator[Proxy]:
    """A :class:`Proxy` in front of ``upstream`` (``127.0.0.1:PORT`` of the real registry)."""
    state = Proxy("", upstream, hook, before)
    handler = type("Handler", (_ProxyHandler,), {"proxy": state})
    with serving(handler) as host:
        state.host = host
        yield state


def header(upstream: Upstream, name: str) -> str | None:
    for k, v in upstream.headers:
        if k.lower() == name.lower():
            return v
    return None


def is_blob_get(exchange: Exchange) -> bool:
    return exchange.method == "GET" and "/blobs/sha256:" in exchange.path


# ---------------------------------------------------------------------------- basic auth registry


def htpasswd_registry(workdir: Path, username: str, password: str) -> RegistryProcess:
    """The real registry with ``htpasswd`` basic auth for one user (bcrypt cost 4: the minimum, fast)."""
    line = f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
    holder = workdir / "htpasswd"
    holder.write_text(line)
    return start_registry(f"auth:\n  htpasswd:\n    realm: repro-build-test\n    path: {holder}\n")


# ---------------------------------------------------------------------------- token auth


@dataclass
class TokenServer:
    """A distribution token server (``docs/spec/auth/token.md``) signing RS256 JWTs with a self-signed cert.

    It grants the requested actions to ``username``/``password`` (basic auth), ``pull`` only to
    anonymous callers, and answers 401 to wrong credentials. ``requests`` counts token requests.
    """

    username: str
    password: str
    service: str = "repro-build-test"
    issuer: str = "repro-build-test-issuer"
    host: str = ""
    requests: list[list[str]] = field(default_factory=list)
    cert_pem: bytes = b""
    _key: rsa.RSAPrivateKey | None = None
    _cert_der: bytes = b""

    def make_keys(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "repro-build test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self._key = key
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self._cert_der = cert.public_bytes(serialization.Encoding.DER)

    def grant(self, authorization: str | None, scopes: list[str]) -> tuple[int, dict[str, object]]:
        self.requests.append(scopes)
        authenticated = False
        if authorization is not None:
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if authorization != f"Basic {expected}":
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
            authenticated = True
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            allowed = wanted if authenticated else [a for a in wanted if a == "pull"]
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.username if authenticated else "",
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        return 200, {"token": self._sign(claims), "expires_in": 300}

    def _sign(self, claims: dict[str, object]) -> str:
        assert self._key is not None
        head = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._cert_der).decode()]}
        signing_input = f"{_b64url(json.dumps(head).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: TokenServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        scopes = query.get("scope", [])
        body: dict[str, object]
        if query.get("service") != [self.server_state.service]:
            status, body = 400, {"errors": [{"code": "UNSUPPORTED", "message": "unknown service"}]}
        else:
            status, body = self.server_state.grant(self.headers.get("Authorization"), scopes)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def token_registry(workdir: Path, username: str, password: str) -> Iterator[tuple[RegistryProcess, TokenServer]]:
    """The real registry with ``auth: token:`` trusting a token server run here on 127.0.0.1."""
    state = TokenServer(username, password)
    state.make_keys()
    handler = type("Handler", (_TokenHandler,), {"server_state": state})
    with serving(handler) as host:
        state.host = host
        bundle = workdir / "token-ca.pem"
        bundle.write_bytes(state.cert_pem)
        proc = start_registry(
            "auth:\n  token:\n"
            f"    realm: http://{host}/token\n"
            f"    service: {state.service}\n"
            f"    issuer: {state.issuer}\n"
            f"    rootcertbundle: {bundle}\n"
        )
        try:
            yield proc, state
        finally:
            proc.stop()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
