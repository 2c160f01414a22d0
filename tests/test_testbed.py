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
