"""Blobs pushed and pulled in parallel: the same digests and bytes as one at a time, real overlap, and
one failed blob failing the whole call with nothing half-written."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from pathlib import Path

import pytest

from reprobuild.errors import DigestMismatchError, RegistryError
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.image import Image
from reprobuild.oci.layout import write_layout
from reprobuild.oci.registry import CredentialStore, RegistryClient
from reprobuild.oci.remote import pull, push, run_all
from tests.oci.helpers import incompressible_image
from tests.oci.registry.servers import Exchange, Upstream, _ProxyHandler, is_blob_get, proxy_to
from tests.testbed import Registry

pytestmark = pytest.mark.registry


def _image(staging: Path) -> Image:
    """An image of 6 incompressible layers of 200 KB (so each transfer takes a moment)."""
    return incompressible_image(staging, layers=6, size=200_000)


def _client(host: str) -> RegistryClient:
    return RegistryClient(host, credentials=CredentialStore.anonymous(), backoff=0.01)


class _InFlight:
    """Counts blob requests the proxy is holding at once (each held 0.15 s so overlap is visible)."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()

    def before(self, exchange: Exchange, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        if "/blobs/" in exchange.path and exchange.method in {"PUT", "PATCH", "GET"}:
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            time.sleep(0.15)
            with self.lock:
                self.now -= 1
        return headers, body


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_parallel_push_and_pull_match_sequential(registry: Registry, tmp_path: Path) -> None:
    img = _image(tmp_path / "staging")
    repo = f"test/par-{uuid.uuid4().hex[:8]}"
    results = {}
    for jobs in (1, 4):
        counter = _InFlight()
        with proxy_to(registry.host, before=counter.before) as proxy:
            client = _client(proxy.host)
            pushed = push(client, f"{repo}-{jobs}", img, tags=["v1"], jobs=jobs)
            data, _, digest = client.get_manifest(f"{repo}-{jobs}", "v1")
            pushed_most = counter.most
            counter.most = 0
            got = pull(client, f"{repo}-{jobs}", "v1", BlobStore(tmp_path / f"pull-{jobs}"), jobs=jobs)
            write_layout(tmp_path / f"layout-{jobs}", got, tag="v1")
        results[jobs] = (pushed, data, digest, _files(tmp_path / f"layout-{jobs}"))
        if jobs == 1:
            assert pushed_most == 1 and counter.most == 1
        else:
            assert pushed_most > 1 and counter.most > 1  # blobs really overlapped
            assert pushed_most <= 4 and counter.most <= 4  # and never more than asked for
    assert results[1] == results[4]
    assert results[4][0] == img.digest and results[4][2] == str(img.digest)


def test_one_failed_upload_fails_the_push_and_writes_no_manifest(registry: Registry, tmp_path: Path) -> None:
    img = _image(tmp_path / "staging")
    bad = str(img.layers[3].digest)
    repo = f"test/parfail-{uuid.uuid4().hex[:8]}"

    def refuse(_h: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | None:
        if exchange.method == "PUT" and f"digest={bad.replace(':', '%3A')}" in exchange.path:
            return Upstream(400, [("Content-Type", "application/json")], b'{"errors":[{"code":"DENIED"}]}')
        return None

    with proxy_to(registry.host, refuse) as proxy:
        with pytest.raises(RegistryError, match=bad):
            push(_client(proxy.host), repo, img, tags=["v1"], jobs=4)
        assert not [e for e in proxy.seen if "/manifests/" in e.path and e.method == "PUT"]
    assert _client(registry.host).head_manifest(repo, "v1") is None


def test_one_corrupt_download_fails_the_pull_and_stores_nothing_of_it(registry: Registry, tmp_path: Path) -> None:
    img = _image(tmp_path / "staging")
    repo = f"test/parpull-{uuid.uuid4().hex[:8]}"
    push(_client(registry.host), repo, img, tags=["v1"])
    bad = str(img.layers[2].digest)

    def flip(_h: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | None:
        if is_blob_get(exchange) and bad in exchange.path and upstream.status == 200:
            body = bytearray(upstream.body)
            body[100] ^= 0xFF
            return Upstream(200, upstream.headers, bytes(body))
        return None

    store = BlobStore(tmp_path / "pull")
    with proxy_to(registry.host, flip) as proxy, pytest.raises(DigestMismatchError, match=bad.split(":")[1]):
        pull(_client(proxy.host), repo, "v1", store, jobs=4)
    assert not store.has(img.layers[2].digest)
    assert not [p for p in store.dir.iterdir() if p.name.startswith(".")]  # no temp file left


def test_run_all_stops_starting_work_after_a_failure_and_raises_the_first_in_order() -> None:
    started: list[int] = []
    gate = threading.Event()

    def item(i: int) -> None:
        started.append(i)
        if i == 0:
            gate.wait(2)
            raise ValueError("zero")
        if i == 1:
            raise KeyError("one")
        gate.set()

    work = [functools.partial(item, i) for i in range(20)]
    with pytest.raises(ValueError, match="zero"):
        run_all(work, 2)
    assert len(started) < 20
