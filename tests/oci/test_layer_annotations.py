"""Layer descriptor annotations: carried into the manifest (and through a layout), never into the blob."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image, default_config, new_image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.layout import read_layout, write_layout
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.validate import validate_image
from reprobuild.oci.values import Platform

EPOCH = 1700000000
#: The annotation keys zstd:chunked (containers/storage) puts on a layer descriptor; values are examples.
CHUNKED = {
    "io.github.containers.zstd-chunked.manifest-checksum": "sha256:" + "ab" * 32,
    "io.github.containers.zstd-chunked.manifest-position": "1024:512:2048:1",
}
ENTRIES = [LayerEntry.file("/etc/motd", b"hello\n"), LayerEntry.file("/app/run", b"#!/bin/sh\n", mode=0o755)]


@pytest.mark.parametrize(
    "compressor", [Compressor.gzip(), Compressor.zstd(), Compressor.none()], ids=lambda c: c.algorithm
)
def test_annotations_reach_the_manifest_and_leave_the_blob_alone(tmp_path: Path, compressor: Compressor) -> None:
    store = BlobStore(tmp_path / "blobs")
    plain = write_layer(ENTRIES, epoch=EPOCH, compressor=compressor, store=store, workers=1)
    annotated = write_layer(ENTRIES, epoch=EPOCH, compressor=compressor, store=store, workers=1, annotations=CHUNKED)

    assert (annotated.digest, annotated.size, annotated.diff_id) == (plain.digest, plain.size, plain.diff_id)
    assert annotated.path.read_bytes() == plain.path.read_bytes()
    assert dict(annotated.descriptor.annotations) == CHUNKED and not plain.descriptor.annotations

    config = default_config(Platform("linux", "amd64"), EPOCH)
    image, bare = new_image(config, [annotated]), new_image(config, [plain])
    layer_json = json.loads(image.manifest_bytes)["layers"][0]
    assert layer_json["annotations"] == CHUNKED
    assert layer_json["digest"] == str(plain.digest)
    assert "annotations" not in json.loads(bare.manifest_bytes)["layers"][0]
    # The config (diff_ids) is the same; only the manifest, which lists the descriptor, differs.
    assert image.config_digest == bare.config_digest and image.digest != bare.digest

    write_layout(tmp_path / "layout", image, tag="t")
    back = read_layout(tmp_path / "layout", tag="t")
    assert isinstance(back, Image) and back.digest == image.digest
    assert dict(back.layers[0].descriptor.annotations) == CHUNKED
    validate_image(back)


def test_annotated_adds_to_a_written_layer(tmp_path: Path) -> None:
    """Values known only after writing (a table of contents' offset) are added to the descriptor later."""
    store = BlobStore(tmp_path / "blobs")
    first = {"org.example.a": "1"}
    layer = write_layer(ENTRIES, epoch=EPOCH, compressor=Compressor.gzip(), store=store, annotations=first)
    later = layer.annotated({"org.example.b": "2"})
    assert dict(later.descriptor.annotations) == {"org.example.a": "1", "org.example.b": "2"}
    assert (later.digest, later.diff_id, later.path) == (layer.digest, layer.diff_id, layer.path)
    assert dict(layer.descriptor.annotations) == first  # values are immutable
