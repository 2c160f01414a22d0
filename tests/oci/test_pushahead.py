"""Layers sent to the push's repository while the image is built (``oci.pushahead``), against a real registry.

What went up ahead is not sent again by the push, the pushed image is the same, and a blob that could not
be sent ahead (bytes that do not match their digest) is left for the push, which reports it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from reprobuild.attest.referrers import push_with_referrers
from reprobuild.errors import DigestMismatchError, RegistryError
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image, default_config, new_image
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.pushahead import BlobsAhead
from reprobuild.oci.registry import CredentialStore, RegistryClient
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Platform
from tests.oci.helpers import EPOCH
from tests.testbed import Registry

pytestmark = pytest.mark.registry


def _image(staging: Path, layers: int = 3) -> Image:
    store = BlobStore(staging)
    built = [
        write_layer(
            [LayerEntry.file(f"/data/{i}.bin", os.urandom(50_000))],
            epoch=EPOCH,
            compressor=Compressor.gzip(),
            store=store,
        )
        for i in range(layers)
    ]
    return new_image(default_config(Platform("linux", "amd64"), EPOCH), built)


class _Counting(RegistryClient):
    """A client that counts the blob uploads it is asked for, by digest."""

    def __init__(self, host: str) -> None:
        super().__init__(host, credentials=CredentialStore.anonymous(), backoff=0.01)
        self.asked: list[str] = []

    def put_blob(self, repository: str, digest: str, size: int, opener: Callable[[], IO[bytes]], **kwargs: Any) -> bool:
        self.asked.append(digest)
        return super().put_blob(repository, digest, size, opener, **kwargs)


def test_what_went_up_ahead_is_not_sent_again(registry: Registry, tmp_path: Path) -> None:
    image = _image(tmp_path / "staging")
    repository = f"ahead/{uuid.uuid4().hex[:8]}"
    client = _Counting(registry.host)
    with client, BlobsAhead(client, repository) as ahead:
        ahead.offer(image.layers[:2])
        ahead.offer(image.layers[:1])  # offered again: sent once
        assert ahead.serves(registry.host, repository, None)
        assert not ahead.serves(registry.host, "ahead/other", None)
        sent = ahead.sent()
        assert sent == {layer.digest for layer in image.layers[:2]}
        assert all(client.blob_exists(repository, str(d)) for d in sent)
        client.asked.clear()
        push_with_referrers(client, repository, image, [], tags=["v1"], present=sent)
        assert sorted(client.asked) == sorted([str(image.layers[2].digest), str(image.config_digest)])
        assert client.get_manifest(repository, "v1")[0] == image.manifest_bytes


def test_a_blob_that_could_not_go_ahead_is_sent_and_reported_by_the_push(registry: Registry, tmp_path: Path) -> None:
    image = _image(tmp_path / "staging", layers=1)
    good = image.layers[0]
    forged = tmp_path / "forged"
    data = bytearray(good.path.read_bytes())
    data[-1] ^= 1
    forged.write_bytes(bytes(data))
    bad = Layer(good.descriptor, good.diff_id, forged)
    repository = f"ahead/{uuid.uuid4().hex[:8]}"
    with RegistryClient(registry.host, credentials=CredentialStore.anonymous(), backoff=0.01) as client:
        with BlobsAhead(client, repository) as ahead:
            ahead.offer([bad])
            assert ahead.sent() == set(), "refused by the client as it was sent: not counted"
            assert not client.blob_exists(repository, str(good.digest))
            with pytest.raises(DigestMismatchError):
                push_with_referrers(client, repository, Image(image.manifest_bytes, image.config_bytes, (bad,)), [])
        with pytest.raises(RegistryError):  # no manifest went up
            client.get_manifest(repository, str(image.digest))
