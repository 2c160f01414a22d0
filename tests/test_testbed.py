"""Smoke tests: the engine and the registry fixtures are real and usable."""

from __future__ import annotations

import hashlib

import pytest
import requests

from tests.conftest import FIXTURE_MARKERS
from tests.golden import Golden
from tests.testbed import Engine, Registry


def test_registry_pushes_and_pulls_a_blob_by_digest(registry: Registry) -> None:
    data = b"repro-build test bed blob\n"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    base = f"{registry.url}/v2/testbed/smoke"
    start = requests.post(f"{base}/blobs/uploads/", timeout=10)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    if location.startswith("/"):
        location = registry.url + location
    put = requests.put(
        location,
        params={"digest": digest},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert put.status_code == 201, put.text
    got = requests.get(f"{base}/blobs/{digest}", timeout=10)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["Docker-Content-Digest"] == digest
    missing = "sha256:" + hashlib.sha256(b"not pushed").hexdigest()
    assert requests.head(f"{base}/blobs/{missing}", timeout=10).status_code == 404


def test_engine_answers(engine: Engine) -> None:
    client = engine.client
    info = client.version()  # type: ignore[attr-defined]
    assert info["ApiVersion"]


def test_markers_come_from_the_fixtures_a_test_uses(request: pytest.FixtureRequest, golden: Golden) -> None:
    """This test asks for no marker; using the `golden` fixture gives it one (tests/conftest.py)."""
    assert request.node.get_closest_marker("golden") is not None
    assert request.node.get_closest_marker("registry") is None
    registered = {line.split(":")[0] for line in request.config.getini("markers")}
    assert {m for markers in FIXTURE_MARKERS.values() for m in markers} <= registered


def test_a_registry_whose_port_was_taken_meanwhile_starts_on_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """``free_port`` is free when chosen, but something may listen there before the registry binds it:
    the fixture must not hand out that other listener; the registry comes up on another port."""
    import http.server
    import itertools

    from tests import testbed
    from tests.oci.registry.servers import serving

    class Other(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # answers the readiness probe like a registry would
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Other) as taken:
        taken_port = int(taken.rsplit(":", 1)[1])
        real = testbed.free_port
        ports = itertools.chain([taken_port], iter(real, None))
        monkeypatch.setattr(testbed, "free_port", lambda: next(ports))
        proc = testbed.start_registry()
        try:
            assert proc.registry.host != taken
            answer = requests.get(f"{proc.registry.url}/v2/", timeout=10)
            assert answer.headers.get("Docker-Distribution-Api-Version") == "registry/2.0"
        finally:
            proc.stop()
