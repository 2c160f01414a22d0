"""Registry credentials: Docker's ``config.json``, credential helpers, and CI environment variables.

Sources, in the order they are consulted for a host (the first that has an entry wins):

1. ``REPRO_BUILD_REGISTRY_USERNAME`` / ``REPRO_BUILD_REGISTRY_PASSWORD`` (for CI). They apply to every
   host, or only to ``REPRO_BUILD_REGISTRY_HOST`` when that is set.
2. ``config.json`` in ``$DOCKER_CONFIG`` (default ``~/.docker``), read the way the Docker CLI reads it
   (``docker/cli`` ``cli/config/configfile``): ``credHelpers[host]`` names a helper for one host;
   otherwise ``credsStore`` names a helper for all hosts; otherwise ``auths[host]`` holds ``auth``
   (base64 ``user:password``), or ``username``/``password``, or an ``identitytoken``.
   A helper is ``docker-credential-<name> get`` with the server URL on stdin and
   ``{"Username": ..., "Secret": ...}`` on stdout (``docker/docker-credential-helpers`` protocol);
   the username ``<token>`` marks the secret as an identity (OAuth2 refresh) token.

Secrets stay in memory: they are never logged, never put in an error message, never written anywhere.
:class:`Credentials` hides them from ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprobuild.errors import RegistryError
from reprobuild.oci.reference import DOCKER_HUB_ALIASES

#: Environment variables for CI, where a docker login is awkward.
ENV_USERNAME = "REPRO_BUILD_REGISTRY_USERNAME"
ENV_PASSWORD = "REPRO_BUILD_REGISTRY_PASSWORD"
ENV_HOST = "REPRO_BUILD_REGISTRY_HOST"

#: Docker Hub keeps its credentials under this legacy key (the Docker CLI's ``IndexServer``).
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"

#: The helper protocol's marker for an identity token in the ``Username`` field.
_TOKEN_USERNAME = "<token>"

#: A helper that hangs must not hang the build.
_HELPER_TIMEOUT_S = 60


@dataclass(frozen=True, repr=False)
class Credentials:
    """A username with a password, or an identity token (OAuth2 refresh token). Never printed."""

    username: str
    password: str = field(default="")
    identity_token: str | None = None

    def __repr__(self) -> str:
        kind = "identity token" if self.identity_token else "password"
        return f"Credentials(username={self.username!r}, {kind}=<hidden>)"

    def secrets(self) -> tuple[str, ...]:
        """The secret strings, for redaction of anything that might echo them."""
        basic = f"{self.username}:{self.password}" if self.password else ""
        return tuple(s for s in (self.password, self.identity_token, basic) if s)


def normalize_host(host: str) -> str:
    """The key a host's credentials are stored under: no scheme, no path, Docker Hub unified.

    ``https://index.docker.io/v1/`` -> ``index.docker.io``; ``http://127.0.0.1:5000/`` -> ``127.0.0.1:5000``.
    """
    text = host.strip()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.split("/", 1)[0].lower()
    return "index.docker.io" if text in DOCKER_HUB_ALIASES else text


def server_url(host: str) -> str:
    """The server URL a credential helper is asked about (Docker Hub's legacy URL, else the host)."""
    key = normalize_host(host)
    return DOCKER_HUB_SERVER if key == "index.docker.io" else key


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    env = os.environ if environ is None else environ
    directory = env.get("DOCKER_CONFIG")
    return (Path(directory) if directory else Path.home() / ".docker") / "config.json"


class CredentialStore:
    """Looks up credentials for a registry host; ``None`` means anonymous.

    Build one with :meth:`from_environment` (what :class:`RegistryClient` does by default),
    :meth:`anonymous`, or :meth:`static` (explicit credentials, e.g. from a secret manager).
    The config file is read once, on the first lookup.
    """

    def __init__(
        self,
        *,
        config_path: Path | None = None,
        environ: Mapping[str, str] | None = None,
        static: Mapping[str, Credentials] | None = None,
        use_helpers: bool = True,
    ) -> None:
        self._config_path = config_path
        self._environ = dict(environ) if environ is not None else None
        self._static = {normalize_host(k): v for k, v in (static or {}).items()}
        self._use_helpers = use_helpers
        self._config: dict[str, Any] | None = None
        self._cache: dict[str, Credentials | None] = {}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> CredentialStore:
        """Environment variables, then Docker's config.json (at ``$DOCKER_CONFIG`` or ``~/.docker``)."""
        env = dict(os.environ if environ is None else environ)
        return cls(config_path=default_config_path(env), environ=env)

    @classmethod
    def anonymous(cls) -> CredentialStore:
        """A store with no credentials at all."""
        return cls(environ={})

    @classmethod
    def static(cls, entries: Mapping[str, Credentials]) -> CredentialStore:
        """Exactly these credentials, keyed by host (``host[:port]``)."""
        return cls(environ={}, static=entries)

    def get(self, host: str) -> Credentials | None:
        """Credentials for ``host`` (``host[:port]``), or ``None`` for anonymous access."""
        key = normalize_host(host)
        if key not in self._cache:
            self._cache[key] = self._lookup(key)
        return self._cache[key]

    def _lookup(self, key: str) -> Credentials | None:
        if key in self._static:
            return self._static[key]
        env = self._environ or {}
        username, password = env.get(ENV_USERNAME), env.get(ENV_PASSWORD)
        only_host = env.get(ENV_HOST)
        if username and password and (not only_host or normalize_host(only_host) == key):
            return Credentials(username, password)
        if self._config_path is None:
            return None
        config = self._load_config()
        helpers = config.get("credHelpers")
        if self._use_helpers and isinstance(helpers, dict):
            for name, helper in helpers.items():
                if normalize_host(str(name)) == key and isinstance(helper, str) and helper:
                    return self._from_helper(helper, key)
        store = config.get("credsStore")
        if self._use_helpers and isinstance(store, str) and store:
            found = self._from_helper(store, key)
            if found is not None:
                return found
        auths = config.get("auths")
        if isinstance(auths, dict):
            for name, entry in auths.items():
                if normalize_host(str(name)) == key and isinstance(entry, dict):
                    found = self._from_auth_entry(entry, str(name))
                    if found is not None:
                        return found
        return None

    def _load_config(self) -> dict[str, Any]:
        if self._config is not None:
            return self._config
        path = self._config_path
        assert path is not None
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self._config = {}
            return self._config
        except OSError as e:
            raise RegistryError(
                f"cannot read the Docker config `{path}`: {e.strerror}",
                "fix its permissions, or point `DOCKER_CONFIG` at another directory",
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            # Only the position, never the text: the file holds secrets.
            raise RegistryError(
                f"the Docker config `{path}` is not valid JSON (line {e.lineno}, column {e.colno})",
                "fix the file, or run `docker login` again to rewrite it",
            ) from None
        self._config = data if isinstance(data, dict) else {}
        return self._config

    def _from_auth_entry(self, entry: Mapping[str, Any], name: str) -> Credentials | None:
        identity = entry.get("identitytoken")
        encoded = entry.get("auth")
        username, password = entry.get("username"), entry.get("password")
        if isinstance(encoded, str) and encoded:
            try:
                decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            username, sep, password = decoded.partition(":")
            if not sep:
                raise RegistryError(
                    f"the `auth` value for `{name}` in the Docker config `{self._config_path}` is not "
                    "base64 of `username:password`",
                    f"run `docker login {name}` again",
                )
        if isinstance(identity, str) and identity:
            return Credentials(str(username or ""), "", identity)
        if isinstance(username, str) and username and isinstance(password, str):
            return Credentials(username, password)
        return None

    def _from_helper(self, helper: str, key: str) -> Credentials | None:
        program = f"docker-credential-{helper}"
        try:
            done = subprocess.run(
                [program, "get"],
                input=server_url(key).encode(),
                capture_output=True,
                timeout=_HELPER_TIMEOUT_S,
                check=False,
            )
        except FileNotFoundError:
            raise RegistryError(
                f"the Docker config `{self._config_path}` names the credential helper `{program}`, "
                "which is not installed",
                f"install `{program}`, or remove `{helper}` from `credsStore`/`credHelpers`",
            ) from None
        except subprocess.TimeoutExpired:
            raise RegistryError(
                f"the credential helper `{program}` did not answer within {_HELPER_TIMEOUT_S}s for `{key}`",
                f"run `echo {server_url(key)} | {program} get` to see what it waits for",
            ) from None
        if done.returncode != 0:
            # "credentials not found in native keychain" is the protocol's way of saying "none".
            if b"not found" in done.stdout.lower() or b"not found" in done.stderr.lower():
                return None
            raise RegistryError(
                f"the credential helper `{program}` failed for `{key}` (exit {done.returncode})",
                f"run `echo {server_url(key)} | {program} get` to see why",
            )
        try:
            answer = json.loads(done.stdout)
            username, secret = str(answer["Username"]), str(answer["Secret"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise RegistryError(
                f"the credential helper `{program}` gave an answer that is not the helper protocol's JSON",
                f"run `echo {server_url(key)} | {program} get` and check its output",
            ) from None
        if not secret:
            return None
        if username == _TOKEN_USERNAME:
            return Credentials("", "", secret)
        return Credentials(username, secret)
