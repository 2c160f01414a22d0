"""Declared sizes are checked before bytes are buffered: a config that claims 3 GiB is refused up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.errors import OCIError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest
from reprobuild.oci.layout import MAX_INDEX_JSON_BYTES, read_layout, write_layout
from reprobuild.oci.mediatypes import OCI_CONFIG, OCI_MANIFEST
from tests.oci.helpers import small_image


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
