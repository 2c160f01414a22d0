"""Small images for OCI tests (no network, no engine)."""

from __future__ import annotations

import os
from pathlib import Path

from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image, default_config, new_image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Platform

EPOCH = 1700000000


def small_image(staging: Path, text: bytes = b"hello\n", compressor: Compressor | None = None) -> Image:
    """A two-layer linux/amd64 image whose blobs live in ``staging``."""
    store = BlobStore(staging)
    c = compressor or Compressor.gzip()
    a = write_layer([LayerEntry.file("/etc/motd", text)], epoch=EPOCH, compressor=c, store=store)
    b = write_layer([LayerEntry.file("/app/data.bin", bytes(range(256)) * 64)], epoch=EPOCH, compressor=c, store=store)
    return new_image(default_config(Platform("linux", "amd64"), EPOCH), [a, b])


def incompressible_image(staging: Path, *, layers: int, size: int) -> Image:
    """A linux/amd64 image of ``layers`` layers of ``size`` random bytes each (so each transfer takes a
    moment), its blobs in ``staging``."""
    store = BlobStore(staging)
    built = [
        write_layer(
            [LayerEntry.file(f"/data/{i}.bin", os.urandom(size))],
            epoch=EPOCH,
            compressor=Compressor.gzip(),
            store=store,
        )
        for i in range(layers)
    ]
    return new_image(default_config(Platform("linux", "amd64"), EPOCH), built)


def tree_files(root: Path) -> set[str]:
    """Every path under ``root`` (to check nothing was written outside a staging dir)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def attestation_manifest(staging: Path, subject: Image) -> Image:
    """An artifact manifest shaped like BuildKit's in-toto attestation manifests (placeholder config,
    one ``application/vnd.in-toto+json`` blob, no diff_ids), for index round-trip tests."""
    import json

    from reprobuild.fsutil import canonical_json_bytes
    from reprobuild.oci.digest import Digest
    from reprobuild.oci.layer import Layer
    from reprobuild.oci.mediatypes import OCI_CONFIG, OCI_MANIFEST
    from reprobuild.oci.values import Descriptor

    store = BlobStore(staging)
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": [str(subject.digest)]}).encode()
    digest = store.put_bytes(statement)
    blob = Layer(Descriptor("application/vnd.in-toto+json", digest, len(statement)), digest, store.path(digest))
    config = canonical_json_bytes({"architecture": "unknown", "os": "unknown", "config": {}})
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": str(Digest.of_bytes(config)), "size": len(config)},
        "layers": [blob.descriptor.to_json()],
    }
    return Image(canonical_json_bytes(manifest), config, (blob,))
