"""Layers sent to the push's repository while the image is built (``oci.pushahead``), against a real registry.

What went up ahead is not sent again by the push, the pushed image is the same, and a blob that could not
be sent ahead (bytes that do not match their digest) is left for the push, which reports it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from reprobuild.attest.referrers import push_with_referrers
from reprobuild.errors import DigestMismatchError, RegistryError
from reprobuild.oci.image import Image
from reprobuild.oci.layer import Layer
from reprobuild.oci.pushahead import BlobsAhead
from reprobuild.oci.registry import CredentialStore, RegistryClient
from tests.oci.helpers import incompressible_image
from tests.testbed import Registry

pytestmark = pytest.mark.registry


class _Counting(RegistryClient):
    """A client that counts the blob uploads it is asked for, by digest."""

    def __init__(self, host: str) -> None:
        super().__init__(host, credentials=CredentialStore.anonymous(), backoff=0.01)
        self.asked: list[str] = []

    def put_blob(self, repository: str, digest: str, size: int, opener: Callable[[], IO[bytes]], **kwargs: Any) -> bool:
        self.asked.append(digest)
        return super().put_blob(repository, digest, size, opener, **kwargs)


def test_what_went_up_ahead_is_not_sent_again(registry: Registry, tmp_path: Path) -> None:
    image = incompressible_image(tmp_path / "staging", layers=3, size=50_000)
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
    image = incompressible_image(tmp_path / "staging", layers=1, size=50_000)
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
