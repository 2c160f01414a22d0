"""Credential lookup (Docker config.json, env) and challenge parsing: pure functions, no registry."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from reprobuild.errors import RegistryError
from reprobuild.oci.registry import Credentials, CredentialStore, RegistryClient
from reprobuild.oci.registry.auth import is_loopback, parse_challenges
from reprobuild.oci.registry.credentials import normalize_host, server_url


def _store(tmp_path: Path, config: object, environ: dict[str, str] | None = None) -> CredentialStore:
    path = tmp_path / "config.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    return CredentialStore(config_path=path, environ=environ or {})


def test_auth_entry_forms(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw:with:colons").decode()},
                "ghcr.io": {"username": "u", "password": "p"},
                "quay.io": {"identitytoken": "refresh-me"},
                "empty.example": {},
            }
        },
    )
    assert store.get("docker.io") == Credentials("hub", "pw:with:colons")
    assert store.get("registry-1.docker.io") == Credentials("hub", "pw:with:colons")
    assert store.get("ghcr.io") == Credentials("u", "p")
    assert store.get("quay.io") == Credentials("", "", "refresh-me")
    assert store.get("empty.example") is None
    assert store.get("unknown.example") is None


def test_environment_wins_and_can_be_scoped(tmp_path: Path) -> None:
    config = {"auths": {"ghcr.io": {"username": "u", "password": "p"}}}
    env = {"REPRO_BUILD_REGISTRY_USERNAME": "ci", "REPRO_BUILD_REGISTRY_PASSWORD": "token"}
    assert _store(tmp_path, config, env).get("ghcr.io") == Credentials("ci", "token")
    scoped = {**env, "REPRO_BUILD_REGISTRY_HOST": "registry.example:5000"}
    assert _store(tmp_path, config, scoped).get("ghcr.io") == Credentials("u", "p")
    assert _store(tmp_path, config, scoped).get("registry.example:5000") == Credentials("ci", "token")


def test_docker_config_env_var_is_honoured(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"r.example": {"username": "a", "password": "b"}}}))
    store = CredentialStore.from_environment({"DOCKER_CONFIG": str(tmp_path)})
    assert store.get("r.example") == Credentials("a", "b")
    assert CredentialStore.from_environment({"DOCKER_CONFIG": str(tmp_path / "absent")}).get("r.example") is None


def test_broken_config_errors_never_echo_the_file(tmp_path: Path) -> None:
    secret = "hunter2-very-secret"
    with pytest.raises(RegistryError) as e:
        _store(tmp_path, '{"auths": {"x": {"password": "' + secret + '"}').get("x")
    assert "not valid JSON" in e.value.message and secret not in str(e.value)
    with pytest.raises(RegistryError, match="base64") as e:
        _store(tmp_path, {"auths": {"x": {"auth": base64.b64encode(secret.encode()).decode()}}}).get("x")
    assert secret not in str(e.value) and secret not in (e.value.hint or "")


def test_missing_credential_helper_is_named(tmp_path: Path) -> None:
    store = _store(tmp_path, {"credHelpers": {"r.example": "does-not-exist-anywhere"}})
    with pytest.raises(RegistryError, match="docker-credential-does-not-exist-anywhere") as e:
        store.get("r.example")
    assert e.value.hint is not None and "install" in e.value.hint


def test_credentials_repr_hides_secrets() -> None:
    assert "s3cr3t" not in repr(Credentials("user", "s3cr3t"))
    assert "r3fr3sh" not in repr(Credentials("", "", "r3fr3sh"))


def test_host_normalisation() -> None:
    assert normalize_host("https://index.docker.io/v1/") == "index.docker.io"
    assert normalize_host("http://127.0.0.1:5000/") == "127.0.0.1:5000"
    assert normalize_host("Registry.Example") == "registry.example"
    assert server_url("docker.io") == "https://index.docker.io/v1/"
    assert server_url("ghcr.io") == "ghcr.io"


def test_parse_challenges_with_quoted_commas() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push repository:c:pull", Basic realm="x"'
    )
    bearer, basic = parse_challenges(header)
    assert bearer.scheme == "bearer" and basic.scheme == "basic"
    assert bearer.get("realm") == "https://auth.example/token"
    assert bearer.get("scope") == "repository:a/b:pull,push repository:c:pull"
    assert basic.get("realm") == "x"
    assert parse_challenges('Bearer error="insufficient_scope",realm=unquoted')[0].get("realm") == "unquoted"


def test_scheme_selection() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:443")
    assert not is_loopback("registry.example:5000") and not is_loopback("10.0.0.1")
    anon = CredentialStore.anonymous()
    assert repr(RegistryClient("127.0.0.1:5000", credentials=anon)) == "RegistryClient('http://127.0.0.1:5000')"
    assert repr(RegistryClient("[::1]:5000", credentials=anon)) == "RegistryClient('http://[::1]:5000')"
    assert repr(RegistryClient("ghcr.io", credentials=anon)) == "RegistryClient('https://ghcr.io')"
    assert repr(RegistryClient("docker.io", credentials=anon)) == "RegistryClient('https://registry-1.docker.io')"
    assert repr(RegistryClient("r.lan:5000", insecure=True, credentials=anon)) == "RegistryClient('http://r.lan:5000')"
    assert (
        repr(RegistryClient("localhost:1", insecure=False, credentials=anon)) == "RegistryClient('https://localhost:1')"
    )


def test_bad_references_are_refused_before_any_request() -> None:
    client = RegistryClient("127.0.0.1:1", credentials=CredentialStore.anonymous(), retries=0)
    with pytest.raises(RegistryError, match="neither a tag nor a digest"):
        client.get_manifest("a/b", "-bad")
    with pytest.raises(RegistryError, match="not a digest"):
        client.get_manifest("a/b", "sha256:XYZ")
    with pytest.raises(RegistryError, match="not a valid repository"):
        client.get_manifest("../etc", "latest")
