"""Registry authentication: anonymous, HTTP basic, and the distribution bearer-token flow.

The flow (``distribution/distribution`` ``docs/spec/auth/token.md``): a request answered
``401`` with ``WWW-Authenticate: Bearer realm="…",service="…",scope="…"`` is retried with a token
fetched from ``realm?service=…&scope=…`` (HTTP basic with the user's credentials when there are any,
anonymous otherwise). The token answer is ``{"token": …}`` or ``{"access_token": …}`` with an optional
``expires_in`` (default 60 s per the spec). An identity token (OAuth2 refresh token from a credential
helper) is exchanged with ``POST realm`` and ``grant_type=refresh_token`` (``docs/spec/auth/oauth.md``).
Tokens are cached per scope set until shortly before they expire.

A ``Basic`` challenge is answered with the credentials directly. Once a host has asked for a scheme,
later requests present it up front, saving a round trip per request.

Where credentials may go (:func:`realm_may_receive_credentials`). The realm is chosen by the registry,
so a hostile or compromised registry could name any server as its token service and collect the
user's password for another registry. Credentials (basic or an identity token) are therefore sent to
a realm only when it is

* on the registry's own host name (any port), or
* ``https`` and in the same registrable domain as the registry (the Public Suffix List's
  "private suffix", so ``auth.docker.io`` serves ``registry-1.docker.io`` and ``gitlab.com`` serves
  ``registry.gitlab.com``, while ``evil.co.uk`` never serves ``registry.co.uk`` and two
  ``*.github.io`` sites never serve each other), or
* a host the user named in ``trusted_realms`` (``$REPRO_BUILD_REGISTRY_TRUSTED_REALMS``).

Any other realm is asked for an anonymous token (enough for public pulls); when the registry then
refuses, the error says that credentials were withheld and how to trust the realm. Docker and
containerd send credentials to whatever realm a registry names; go-containerregistry (``bearer.go``
``validateRealmURL``) binds the realm to the registry's domain by its last two labels, which this
rule refines with the Public Suffix List and the opt-in list.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from reprobuild.errors import RegistryError
from reprobuild.oci.registry.credentials import Credentials

if TYPE_CHECKING:
    import requests
    from publicsuffixlist import PublicSuffixList

#: The spec's default lifetime of a token without ``expires_in``.
_DEFAULT_TOKEN_LIFETIME_S = 60
#: Renew a token this long before it expires, so a request never carries a token that dies in flight.
_TOKEN_MARGIN_S = 10
#: Identifies us to the token server in the OAuth2 flow (the spec requires a client_id).
CLIENT_ID = "repro-build"
#: Comma-separated token-server hosts the user trusts with the registry's credentials.
TRUSTED_REALMS_ENV = "REPRO_BUILD_REGISTRY_TRUSTED_REALMS"

log = logging.getLogger(__name__)

# A challenge parameter: key=token or key="quoted string" (RFC 9110 §11.2 auth-param).
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge: its scheme (lowercase) and parameters."""

    scheme: str
    params: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str | None:
        for k, v in self.params:
            if k == key:
                return v
        return None


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value into challenges (quoted commas are handled)."""
    challenges: list[Challenge] = []
    pos = 0
    text = header.strip()
    while pos < len(text):
        scheme_match = re.compile(r"\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)").match(text, pos)
        if scheme_match is None:
            break
        scheme = scheme_match.group(1).lower()
        pos = scheme_match.end()
        params: list[tuple[str, str]] = []
        while pos < len(text):
            m = _PARAM_RE.match(text, pos)
            if m is None:
                break
            value = m.group(2) if m.group(2) is not None else (m.group(3) or "")
            params.append((m.group(1).lower(), re.sub(r"\\(.)", r"\1", value)))
            pos = m.end()
        challenges.append(Challenge(scheme, tuple(params)))
    return challenges


def is_loopback(host: str) -> bool:
    """True for ``127.0.0.1``, ``localhost`` or ``[::1]``, with any port."""
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.lower() in {"127.0.0.1", "localhost", "::1"}


@cache
def _public_suffix_list() -> PublicSuffixList:
    """The list bundled with the pinned ``publicsuffixlist`` wheel (never fetched: no host dependence);
    imported only when a token realm is checked against it."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def _hostname(netloc: str) -> str:
    """``netloc`` without userinfo and port, lowercase, without a trailing dot or IPv6 brackets."""
    host = netloc.rsplit("@", 1)[-1]
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.lower().rstrip(".")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def trusted_realms_from_environment() -> frozenset[str]:
    """Host names in ``$REPRO_BUILD_REGISTRY_TRUSTED_REALMS`` (comma-separated, ports ignored)."""
    text = os.environ.get(TRUSTED_REALMS_ENV, "")
    return frozenset(_hostname(item.strip()) for item in text.split(",") if item.strip())


def realm_may_receive_credentials(registry: str, realm: str, trusted: frozenset[str] = frozenset()) -> bool:
    """Whether the token server at URL ``realm`` may be sent the credentials of ``registry`` (the host
    the client talks to, ``name[:port]``): same host name, or ``https`` within the same registrable
    domain, or a host in ``trusted``."""
    parts = urlsplit(realm)
    realm_host = _hostname(parts.netloc)
    registry_host = _hostname(registry)
    if not realm_host:
        return False
    if realm_host == registry_host or realm_host in trusted:
        return True
    if parts.scheme != "https" or _is_ip(realm_host) or _is_ip(registry_host):
        return False
    psl = _public_suffix_list()
    domain = psl.privatesuffix(realm_host)
    return domain is not None and domain == psl.privatesuffix(registry_host)


def basic_header(credentials: Credentials) -> str:
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode("ascii")
    return f"Basic {token}"


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


class Authenticator:
    """Answers a registry's challenges for one host and caches bearer tokens per scope set.

    ``send`` performs an HTTP request with the client's retry policy (so token fetches are retried
    like any other request). Thread-safe: pulls and pushes may run blobs in parallel.
    """

    def __init__(
        self,
        host: str,
        credentials: Credentials | None,
        *,
        allow_plain_http: bool,
        send: Callable[..., requests.Response],
        describe: Callable[[requests.Response], str],
        api_host: str | None = None,
        trusted_realms: frozenset[str] = frozenset(),
    ) -> None:
        self._host = host
        self._api_host = api_host or host
        self._trusted_realms = trusted_realms
        #: The realm host credentials were withheld from, for the error when access is then refused.
        self.withheld_from: str | None = None
        self._credentials = credentials
        self._allow_plain_http = allow_plain_http
        self._send = send
        self._describe = describe
        self._lock = threading.Lock()
        self._scheme: str | None = None
        self._bearer: Challenge | None = None
        self._tokens: dict[frozenset[str], _Token] = {}

    def header(self, scopes: Iterable[str]) -> str | None:
        """The ``Authorization`` value to present up front for ``scopes``, if the host's scheme is known."""
        with self._lock:
            scheme, bearer = self._scheme, self._bearer
            if scheme == "basic" and self._credentials is not None:
                return basic_header(self._credentials)
            if scheme != "bearer" or bearer is None:
                return None
            token = self._tokens.get(frozenset(scopes))
            if token is not None and token.expires_at > time.monotonic():
                return f"Bearer {token.value}"
        # The host uses tokens and none is cached for this scope: fetch one now rather than
        # sending a request that is bound to come back 401.
        return self._fetch_token(bearer, frozenset(scopes))

    def answer(self, response: requests.Response, scopes: Iterable[str]) -> str | None:
        """The ``Authorization`` value to retry a 401 ``response`` with, or ``None`` when there is none."""
        header = response.headers.get("WWW-Authenticate", "")
        challenges = {c.scheme: c for c in parse_challenges(header)}
        wanted = frozenset(scopes)
        if "bearer" in challenges:
            challenge = challenges["bearer"]
            extra = challenge.get("scope")
            if extra:
                wanted = wanted | frozenset(extra.split())
            with self._lock:
                self._scheme, self._bearer = "bearer", challenge
                self._tokens.pop(frozenset(scopes), None)
            return self._fetch_token(challenge, wanted, cache_as=frozenset(scopes))
        if "basic" in challenges and self._credentials is not None:
            if self._credentials.identity_token and not self._credentials.password:
                return None
            with self._lock:
                self._scheme = "basic"
            return basic_header(self._credentials)
        return None

    def _fetch_token(
        self, challenge: Challenge, scopes: frozenset[str], *, cache_as: frozenset[str] | None = None
    ) -> str:
        realm = challenge.get("realm")
        if not realm:
            raise RegistryError(
                f"registry `{self._host}` asked for a bearer token without naming a token server (realm)",
                "the registry is misconfigured; report it to its operator",
            )
        parts = urlsplit(realm)
        if parts.scheme not in {"https", "http"}:
            raise RegistryError(
                f"registry `{self._host}` named a token server that is not an http(s) URL",
                "the registry is misconfigured; report it to its operator",
            )
        creds = self._credentials
        if creds is not None and not realm_may_receive_credentials(self._api_host, realm, self._trusted_realms):
            # Never hand the registry's credentials to a token server the registry merely names.
            if self.withheld_from is None:
                log.warning(
                    "registry `%s` names token server `%s`, outside its domain: asking it anonymously",
                    self._host,
                    _hostname(parts.netloc),
                )
            self.withheld_from = _hostname(parts.netloc)
            creds = None
        if parts.scheme == "http" and creds is not None and not (self._allow_plain_http or is_loopback(parts.netloc)):
            # Never send a password in clear text to a server the user did not mark as insecure.
            raise RegistryError(
                f"registry `{self._host}` sent its token server as plain http://{parts.netloc}; "
                "refusing to send credentials there",
                "use a registry whose token server speaks HTTPS, or pass insecure=True for a test registry",
            )
        service = challenge.get("service")
        scope_list = sorted(scopes)
        headers = {"Accept": "application/json"}
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": CLIENT_ID}
            if service:
                form["service"] = service
            if scope_list:
                form["scope"] = " ".join(scope_list)
            response = self._send("POST", realm, data=form, headers=headers)
        else:
            params: list[tuple[str, str]] = []
            if service:
                params.append(("service", service))
            params.extend(("scope", s) for s in scope_list)
            if creds is not None:
                headers["Authorization"] = basic_header(creds)
            response = self._send("GET", realm, params=params, headers=headers)
        if response.status_code in {401, 403}:
            if self.withheld_from is not None and creds is None:
                raise RegistryError(
                    f"the token server of `{self._host}` refused an anonymous token ({response.status_code}) for "
                    f"{' '.join(scope_list) or 'the registry'}",
                    self.withheld_hint(),
                )
            raise RegistryError(
                f"the token server of `{self._host}` refused the credentials "
                f"({response.status_code}) for {' '.join(scope_list) or 'the registry'}",
                f"log in with `docker login {self._host}`, or set REPRO_BUILD_REGISTRY_USERNAME and "
                "REPRO_BUILD_REGISTRY_PASSWORD",
            )
        if response.status_code != 200:
            raise RegistryError(
                f"the token server of `{self._host}` answered {self._describe(response)}",
                "try again later; if it persists, report it to the registry's operator",
            )
        try:
            body = response.json()
            value = body.get("token") or body.get("access_token")
            lifetime = int(body.get("expires_in") or _DEFAULT_TOKEN_LIFETIME_S)
        except (ValueError, AttributeError, TypeError):
            value, lifetime = None, 0
        if not isinstance(value, str) or not value:
            raise RegistryError(
                f"the token server of `{self._host}` answered without a token",
                "the registry is misconfigured; report it to its operator",
            )
        expires = time.monotonic() + max(lifetime - _TOKEN_MARGIN_S, 1)
        with self._lock:
            self._tokens[cache_as if cache_as is not None else scopes] = _Token(value, expires)
        return f"Bearer {value}"

    def withheld_hint(self) -> str:
        """What to do when access failed because credentials were withheld from a foreign realm."""
        return (
            f"the registry named the token server `{self.withheld_from}`, which is neither its own host nor in "
            f"its domain, so the credentials for `{self._host}` were not sent there; if you trust that server, "
            f"set {TRUSTED_REALMS_ENV}={self.withheld_from}"
        )
