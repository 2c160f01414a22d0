"""Authentication against the real registry: htpasswd basic auth and the bearer-token flow.

Credentials come from a temporary ``DOCKER_CONFIG``, from the CI environment variables, or from a
credential helper on ``PATH``; none may appear in an error message or a log line.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reprobuild.errors import RegistryError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.oci.mediatypes import OCI_CONFIG, OCI_MANIFEST
from reprobuild.oci.registry import Credentials, CredentialStore, RegistryClient
from tests.oci.registry.servers import TokenServer, htpasswd_registry, sha256, token_registry
from tests.testbed import RegistryProcess

pytestmark = pytest.mark.registry

USER = "builder"
PASSWORD = "s3cret-Pa55word-" + uuid.uuid4().hex  # unique, so a leak cannot hide in other text


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    proc = htpasswd_registry(tmp_path_factory.mktemp("htpasswd"), USER, PASSWORD)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def bearer_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryProcess, TokenServer]]:
    with token_registry(tmp_path_factory.mktemp("token"), USER, PASSWORD) as pair:
        yield pair


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``DOCKER_CONFIG`` directory, and no CI credential variables."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    for name in ("REPRO_BUILD_REGISTRY_USERNAME", "REPRO_BUILD_REGISTRY_PASSWORD", "REPRO_BUILD_REGISTRY_HOST"):
        monkeypatch.delenv(name, raising=False)
    return directory


def _write_config(directory: Path, config: dict[str, object]) -> None:
    (directory / "config.json").write_text(json.dumps(config))


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _round_trip(client: RegistryClient) -> None:
    """Push a blob, a config and a manifest, and read them back."""
    repo = f"test/auth-{uuid.uuid4().hex[:8]}"
    data = os.urandom(20_000)
    config = canonical_json_bytes({"os": "linux"})
    assert client.put_blob(repo, sha256(data), len(data), lambda: io.BytesIO(data)) is True
    assert client.put_blob(repo, sha256(config), len(config), lambda: io.BytesIO(config), chunk_size=7) is True
    manifest = canonical_json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": "application/octet-stream", "digest": sha256(data), "size": len(data)}],
        }
    )
    digest = client.put_manifest(repo, "v1", manifest, OCI_MANIFEST)
    assert client.get_manifest(repo, digest) == (manifest, OCI_MANIFEST, digest)
    assert client.head_manifest(repo, "v1") == (digest, OCI_MANIFEST, len(manifest))
    out = io.BytesIO()
    client.get_blob(repo, sha256(data), out, size=len(data))
    assert out.getvalue() == data
    assert client.list_tags(repo) == ["v1"]


def _assert_no_secret(error: BaseException, caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    rendered = [str(error), repr(error), getattr(error, "hint", "") or "", caplog.text]
    for secret in (*secrets, _auth(USER, secrets[0]) if secrets else ""):
        if secret:
            for text in rendered:
                assert secret not in text


# ---------------------------------------------------------------------------- basic


def test_basic_auth_from_docker_config(
    basic_registry: RegistryProcess, docker_config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    host = basic_registry.registry.host
    _write_config(docker_config, {"auths": {host: {"auth": _auth(USER, PASSWORD)}}})
    _round_trip(RegistryClient(host))  # credentials=None: from the environment
    assert PASSWORD not in caplog.text and _auth(USER, PASSWORD) not in caplog.text


def test_basic_auth_username_password_fields_and_url_keys(basic_registry: RegistryProcess, docker_config: Path) -> None:
    host = basic_registry.registry.host
    _write_config(docker_config, {"auths": {f"http://{host}/": {"username": USER, "password": PASSWORD}}})
    _round_trip(RegistryClient(host))


def test_basic_auth_from_ci_environment(
    basic_registry: RegistryProcess, docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = basic_registry.registry.host
    monkeypatch.setenv("REPRO_BUILD_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("REPRO_BUILD_REGISTRY_PASSWORD", PASSWORD)
    _round_trip(RegistryClient(host))
    # Restricted to another host: not used here.
    monkeypatch.setenv("REPRO_BUILD_REGISTRY_HOST", "elsewhere.example:5000")
    with pytest.raises(RegistryError, match="not authorized"):
        RegistryClient(host).list_tags("test/none")


def test_basic_auth_from_credential_helper(
    basic_registry: RegistryProcess, docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = basic_registry.registry.host
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked"
    helper = bin_dir / "docker-credential-reprotest"
    # The helper protocol: server URL on stdin, JSON on stdout (docker-credential-helpers).
    helper.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "assert sys.argv[1:] == ['get']\n"
        "url = sys.stdin.read().strip()\n"
        f"open({str(asked)!r}, 'w').write(url)\n"
        f"if url != {host!r}:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n"
        f"print(json.dumps({{'ServerURL': url, 'Username': {USER!r}, 'Secret': {PASSWORD!r}}}))\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    _write_config(docker_config, {"credHelpers": {host: "reprotest"}, "auths": {host: {}}})
    _round_trip(RegistryClient(host))
    assert asked.read_text() == host
    # A credsStore that knows nothing about the host means anonymous access.
    _write_config(docker_config, {"credsStore": "reprotest"})
    assert CredentialStore.from_environment().get("other.example") is None


def test_missing_credentials_say_how_to_log_in(basic_registry: RegistryProcess) -> None:
    host = basic_registry.registry.host
    client = RegistryClient(host, credentials=CredentialStore.anonymous())
    with pytest.raises(RegistryError) as e:
        client.get_manifest("test/private", "v1")
    assert "not authorized" in e.value.message and f"{host}/test/private:v1" in e.value.message
    assert e.value.hint is not None and f"docker login {host}" in e.value.hint


def test_wrong_password_is_never_shown(basic_registry: RegistryProcess, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    host = basic_registry.registry.host
    wrong = "wr0ng-" + uuid.uuid4().hex
    client = RegistryClient(host, credentials=CredentialStore.static({host: Credentials(USER, wrong)}))
    with pytest.raises(RegistryError) as e:
        client.put_blob("test/x", sha256(b"x"), 1, lambda: io.BytesIO(b"x"))
    assert "not authorized" in e.value.message
    _assert_no_secret(e.value, caplog, wrong)
    assert wrong not in repr(client) and wrong not in repr(Credentials(USER, wrong))


# ---------------------------------------------------------------------------- bearer


def test_bearer_token_flow_with_credentials(
    bearer_registry: tuple[RegistryProcess, TokenServer], docker_config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    proc, tokens = bearer_registry
    host = proc.registry.host
    _write_config(docker_config, {"auths": {host: {"auth": _auth(USER, PASSWORD)}}})
    before = len(tokens.requests)
    _round_trip(RegistryClient(host))
    issued = tokens.requests[before:]
    # Tokens are cached per scope: one for pull (the first HEAD), one for pull+push, not one per request.
    assert len(issued) == 2, issued
    assert issued[0][0].endswith(":pull") and issued[1][0].endswith(":pull,push")
    assert PASSWORD not in caplog.text


def test_bearer_anonymous_pull_allowed_push_denied(bearer_registry: tuple[RegistryProcess, TokenServer]) -> None:
    proc, _ = bearer_registry
    host = proc.registry.host
    client = RegistryClient(host, credentials=CredentialStore.anonymous())
    assert client.blob_exists("test/anon", sha256(b"nothing")) is False  # anonymous pull token works
    with pytest.raises(RegistryError) as e:
        client.put_blob("test/anon", sha256(b"x"), 1, lambda: io.BytesIO(b"x"))
    assert "not authorized" in e.value.message
    assert e.value.hint is not None and f"docker login {host}" in e.value.hint


def test_bearer_wrong_password_is_never_shown(
    bearer_registry: tuple[RegistryProcess, TokenServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    proc, _ = bearer_registry
    host = proc.registry.host
    wrong = "wr0ng-" + uuid.uuid4().hex
    client = RegistryClient(host, credentials=CredentialStore.static({host: Credentials(USER, wrong)}))
    with pytest.raises(RegistryError) as e:
        client.list_tags("test/x")
    assert "token server" in e.value.message and "refused" in e.value.message
    _assert_no_secret(e.value, caplog, wrong)


def test_netrc_does_not_override_the_chosen_credentials(
    basic_registry: RegistryProcess, docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``requests`` applies ``~/.netrc`` unless told otherwise; a stale entry must not replace ours."""
    host = basic_registry.registry.host
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login stale password stale-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    _write_config(docker_config, {"auths": {host: {"auth": _auth(USER, PASSWORD)}}})
    _round_trip(RegistryClient(host))


def test_parallel_pushes_share_one_client(bearer_registry: tuple[RegistryProcess, TokenServer]) -> None:
    """The OCI core pushes layers on a thread pool through one client: tokens are shared, not raced."""
    from concurrent.futures import ThreadPoolExecutor

    proc, tokens = bearer_registry
    host = proc.registry.host
    client = RegistryClient(host, credentials=CredentialStore.static({host: Credentials(USER, PASSWORD)}))
    repo = f"test/parallel-{uuid.uuid4().hex[:8]}"
    blobs = [os.urandom(30_000 + i) for i in range(12)]
    before = len(tokens.requests)
    with ThreadPoolExecutor(max_workers=4) as pool:
        pushed = list(
            pool.map(lambda b: client.put_blob(repo, sha256(b), len(b), lambda: io.BytesIO(b), chunk_size=8192), blobs)
        )
    assert pushed == [True] * len(blobs)
    # At most one pull and one push token per worker racing on an empty cache; never one per request.
    assert 2 <= len(tokens.requests) - before <= 8
    for b in blobs:
        out = io.BytesIO()
        client.get_blob(repo, sha256(b), out, size=len(b))
        assert out.getvalue() == b
