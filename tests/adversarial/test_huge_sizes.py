"""Declared sizes are checked before bytes are buffered: a config that claims 3 GiB is refused up front."""

from __future__ import annotations

import http.server
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from reprobuild.errors import OCIError, RegistryError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest
from reprobuild.oci.layout import MAX_INDEX_JSON_BYTES, read_layout, write_layout
from reprobuild.oci.mediatypes import OCI_CONFIG, OCI_MANIFEST
from reprobuild.oci.registry import CredentialStore, RegistryClient
from tests.oci.helpers import small_image
from tests.oci.registry.servers import serving


class _HugeConfigRegistry:
    host = "huge.test"

    def __init__(self) -> None:
        self.manifest = canonical_json_bytes(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": "sha256:" + "a" * 64, "size": 3 << 30},
                "layers": [],
            }
        )
        self.blob_requests = 0

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        return self.manifest, OCI_MANIFEST, str(Digest.of_bytes(self.manifest))

    def get_blob(self, *args: object, **kwargs: object) -> None:
        self.blob_requests += 1
        raise AssertionError("a 3 GiB config must not be fetched")


def test_config_declaring_3_gib_is_refused_before_download(tmp_path: Path) -> None:
    from reprobuild.oci.remote import pull

    registry = _HugeConfigRegistry()
    with pytest.raises(OCIError, match="declares 3221225472 bytes"):
        pull(registry, "x", "latest", BlobStore(tmp_path))  # type: ignore[arg-type]
    assert registry.blob_requests == 0


def test_oversized_index_json_is_refused_unread(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_layout(layout, small_image(tmp_path / "staging"))
    with (layout / "index.json").open("r+b") as f:
        f.truncate(MAX_INDEX_JSON_BYTES + 1)  # sparse: no memory or disk spent
    with pytest.raises(OCIError, match="the limit is"):
        read_layout(layout)


def test_index_json_size_lie_is_refused(tmp_path: Path) -> None:
    import json

    layout = tmp_path / "layout"
    write_layout(layout, small_image(tmp_path / "staging"))
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["size"] += 1000
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(OCIError, match="its descriptor says"):
        read_layout(layout)


class _HugeAnswers(http.server.BaseHTTPRequestHandler):
    """Answers every request with a 64 MiB body: a tag list (200), a manifest error (404) and a token (200)."""

    BLOCK = b" " * (1 << 20)
    BLOCKS = 64

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        status = 404 if "/manifests/" in self.path else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.BLOCK) * self.BLOCKS))
        self.end_headers()
        try:
            for _ in range(self.BLOCKS):
                self.wfile.write(self.BLOCK)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _traced(call: Callable[[], object]) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        try:
            call()
            raised: BaseException | None = None
        except RegistryError as e:
            raised = e
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return raised, peak


def test_huge_registry_answers_are_never_read_whole() -> None:
    """A tag list, an error body and a token answer of 64 MiB each: refused (or only the status kept)
    with at most a few MiB in memory; the client used to read any answer it did not stream whole."""
    with serving(_HugeAnswers) as host:
        client = RegistryClient(host, credentials=CredentialStore.anonymous(), timeout=(5, 10), deadline=30, retries=0)
        tags, peak = _traced(lambda: client.list_tags("x"))
        assert isinstance(tags, RegistryError) and "larger than" in tags.message, tags
        assert peak < 16 << 20, f"tag list: peak {peak} bytes"
        missing, peak = _traced(lambda: client.get_manifest("x", "latest"))
        assert isinstance(missing, RegistryError) and "404" in missing.message, missing
        assert peak < 16 << 20, f"error body: peak {peak} bytes"


class _HugeToken(_HugeAnswers):
    """Asks for a bearer token, whose server then answers with 64 MiB."""

    def do_GET(self) -> None:
        if self.path.startswith("/v2/"):
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="http://{self.headers["Host"]}/token",service="t"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


def test_a_huge_token_answer_is_refused() -> None:
    with serving(_HugeToken) as host:
        client = RegistryClient(host, credentials=CredentialStore.anonymous(), timeout=(5, 10), deadline=30, retries=0)
        raised, peak = _traced(lambda: client.list_tags("x"))
    assert isinstance(raised, RegistryError) and "token server" in raised.message, raised
    assert "larger than" in raised.message
    assert peak < 16 << 20, f"peak {peak} bytes"
