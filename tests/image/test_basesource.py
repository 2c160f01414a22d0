"""The base-image seam: one source per kind, one registry, one record shape, errors that keep their class."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import uuid
from pathlib import Path
from typing import Any, get_args

import pytest

from reprobuild.cli.progress import LineProgress
from reprobuild.config import BaseKind, BaseSpec, Config, Target, load_config, parse_base
from reprobuild.errors import BaseImageError, ConfigError, DigestMismatchError, EngineError
from reprobuild.image.base import resolve_base
from reprobuild.image.basesource import BaseRecord, BaseRequest, BaseSource, ResolvedBase
from reprobuild.image.basesources import BASE_SOURCES, LayoutSource, _uncompressed, with_debian
from reprobuild.manifest.schema import EngineBase, read_base
from reprobuild.oci import engine as engine_io
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.layout import read_layout
from reprobuild.oci.mediatypes import OCI_LAYER
from reprobuild.oci.reference import parse_reference
from reprobuild.oci.registry import CredentialStore, RegistryClient
from reprobuild.oci.remote import push
from reprobuild.oci.tarwriter import LayerEntry
from tests.oci.registry.servers import Exchange, Upstream, _ProxyHandler, is_blob_get, proxy_to
from tests.testbed import Engine, Registry


def _golden(golden_project: Path) -> tuple[Config, Target]:
    config = load_config(golden_project)
    return config, config.target("cpu")


def test_every_configurable_kind_has_exactly_one_source() -> None:
    assert set(BASE_SOURCES) == set(get_args(BaseKind))
    assert all(kind == source.kind for kind, source in BASE_SOURCES.items())


def test_layout_base_record_has_the_common_shape(golden_project: Path, tmp_path: Path) -> None:
    config, target = _golden(golden_project)
    resolved = resolve_base(config, target, BlobStore(tmp_path / "store"), tmp_path / "staging")
    record = resolved.record.to_dict()
    assert record == {
        "kind": "oci-layout",
        "reference": target.base.text,
        "platform": "linux/amd64",
        "manifest_digest": str(resolved.image.digest),
        "digest": target.base.digest,
        "index_digest": None,
    }


def test_resolve_base_dispatches_through_the_given_sources(golden_project: Path, tmp_path: Path) -> None:
    """A source plugged in for a kind is the one used, and its record is what the build records."""
    config, target = _golden(golden_project)
    asked: list[BaseRequest] = []

    class Counting:
        kind = "oci-layout"

        def resolve(self, request: BaseRequest) -> ResolvedBase:
            asked.append(request)
            inner = LayoutSource().resolve(request)
            extra = {**inner.record.origin, "seen": len(asked)}
            return ResolvedBase(inner.image, dataclasses.replace(inner.record, origin=extra))

    source: BaseSource = Counting()
    resolved = resolve_base(config, target, BlobStore(tmp_path / "s"), tmp_path / "st", sources={"oci-layout": source})
    assert [r.target.name for r in asked] == ["cpu"]
    assert resolved.record.to_dict()["seen"] == 1


def test_a_kind_without_a_source_is_a_clear_error(golden_project: Path, tmp_path: Path) -> None:
    config, target = _golden(golden_project)
    with pytest.raises(BaseImageError, match="no source of 'oci-layout' bases") as e:
        resolve_base(config, target, BlobStore(tmp_path / "s"), tmp_path / "st", sources={})
    assert e.value.hint is not None


def test_debian_without_a_builder_says_so(golden_project: Path, tmp_path: Path) -> None:
    config, target = _golden(golden_project)
    debian = dataclasses.replace(target, base=BaseSpec("debian", "debian:bookworm", suite="bookworm"))
    with pytest.raises(BaseImageError, match="embedded Debian base is not available"):
        resolve_base(config, debian, BlobStore(tmp_path / "s"), tmp_path / "st")
    built: list[str] = []

    def builder(config: Config, target: Target, staging: Path) -> tuple[Image, dict[str, object]]:
        built.append(target.name)
        image = read_layout(golden_project / "fakebase", tag="base")
        assert isinstance(image, Image)
        return image, {"suite": "bookworm", "lock": "locks/base-bookworm-amd64.json"}

    resolved = resolve_base(config, debian, BlobStore(tmp_path / "s"), tmp_path / "st", debian=builder)
    assert built == ["cpu"]
    assert resolved.record == BaseRecord(
        "debian", "debian:bookworm", "linux/amd64", str(resolved.image.digest), resolved.record.origin
    )
    assert resolved.record.to_dict()["lock"] == "locks/base-bookworm-amd64.json"
    assert with_debian(None) is BASE_SOURCES


@pytest.mark.registry
def test_a_corrupt_registry_base_stays_a_digest_mismatch(
    registry: Registry, golden_project: Path, tmp_path: Path
) -> None:
    """The registry serves other bytes for a base layer: the error says so as a DigestMismatchError
    (not rewrapped into a generic base error), naming the base."""
    config, target = _golden(golden_project)
    image = read_layout(golden_project / "fakebase", tag="base")
    repo = f"test/base-{uuid.uuid4().hex[:8]}"
    digest = push(RegistryClient(registry.host, credentials=CredentialStore.anonymous()), repo, image)

    def flip(handler: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | None:
        if is_blob_get(exchange) and upstream.status == 200:
            body = bytearray(upstream.body)
            body[len(body) // 2] ^= 0xFF
            return Upstream(200, upstream.headers, bytes(body))
        return None

    with proxy_to(registry.host, flip) as proxy:
        text = f"{proxy.host}/{repo}@{digest}"
        ref = parse_reference(text, origin="test")
        pulled = dataclasses.replace(target, base=BaseSpec("registry", text, reference=ref, digest=str(digest)))
        with pytest.raises(DigestMismatchError) as e:
            resolve_base(config, pulled, BlobStore(tmp_path / "store"), tmp_path / "staging")
    assert e.value.message.startswith(f"pulling base {text}: ")
    assert not any((tmp_path / "store").rglob("*.tmp*"))


@pytest.mark.parametrize("text", ["docker-daemon:python:3.11", "docker-daemon:sha256:abc", f"docker-daemon:{'0' * 64}"])
def test_an_engine_base_must_name_an_image_id(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="by its ID") as e:
        parse_base(text, "tool.repro-build.targets.cpu.base", None, tmp_path)
    assert e.value.hint is not None and "docker-daemon:sha256:" in e.value.hint


@pytest.mark.engine
def test_engine_base_is_the_pinned_config_with_uncompressed_layers(
    engine: Engine, golden_project: Path, tmp_path: Path
) -> None:
    """The base is read back from the engine by its image ID; its bytes depend on the ID alone: the
    config is the engine's, every layer is its uncompressed tar (digest = diff_id), the manifest ours."""
    config, target = _golden(golden_project)
    fake = read_layout(golden_project / "fakebase", tag="base")
    assert isinstance(fake, Image)
    tag = f"repro-build-test/engine-base:{uuid.uuid4().hex[:8]}"
    client: Any = engine.client
    image_id = engine_io.load_image(client, fake, tag, tmp_path / "load")
    try:
        text = f"docker-daemon:{image_id}"
        spec = parse_base(text, "tool.repro-build.targets.cpu.base", None, golden_project)
        pinned = dataclasses.replace(target, base=spec)
        first = resolve_base(config, pinned, BlobStore(tmp_path / "s1"), tmp_path / "st1")
        again = resolve_base(config, pinned, BlobStore(tmp_path / "s2"), tmp_path / "st2")
    finally:
        client.images.remove(tag)
    image = first.image
    assert image.digest == again.image.digest
    assert str(image.config_digest) == image_id and image.config_bytes == fake.config_bytes
    assert image.diff_ids == fake.diff_ids
    assert [(layer.media_type, layer.digest) for layer in image.layers] == [(OCI_LAYER, d) for d in fake.diff_ids]
    assert first.record.to_dict() == {
        "kind": "docker-daemon",
        "reference": text,
        "platform": "linux/amd64",
        "manifest_digest": str(image.digest),
        "digest": image_id,
    }
    python = {"glibc": "2.36", "interpreter": "/usr/bin/python3", "os": None, "python": "3.11.2", "site-packages": "/x"}
    recorded = read_base({**first.record.to_dict(), "python": python}, tmp_path / "manifest.json")
    assert isinstance(recorded, EngineBase) and recorded.digest == image_id  # the manifest's typed shape
    absent = "sha256:" + hashlib.sha256(uuid.uuid4().bytes).hexdigest()  # an ID the engine has no image for
    missing = dataclasses.replace(target, base=BaseSpec("docker-daemon", f"docker-daemon:{absent}", digest=absent))
    with pytest.raises(EngineError, match=absent):
        resolve_base(config, missing, BlobStore(tmp_path / "s3"), tmp_path / "st3")


def test_engine_layers_given_compressed_are_carried_uncompressed(tmp_path: Path) -> None:
    """What an engine with the containerd store saves (the pulled, compressed blobs) becomes the same
    uncompressed layer as what the classic store saves; a blob that does not decompress to its diff_id is refused."""
    store = BlobStore(tmp_path / "store")
    entries = [LayerEntry.file("/etc/motd", b"hello\n")]
    gz = write_layer(entries, epoch=0, compressor=Compressor.gzip(), store=store, workers=1)
    plain = write_layer(entries, epoch=0, compressor=Compressor.none(), store=store, workers=1)
    carried = _uncompressed(gz, BlobStore(tmp_path / "out"), "base test")
    assert (carried.media_type, carried.digest, carried.diff_id) == (OCI_LAYER, gz.diff_id, gz.diff_id)
    assert carried.path.read_bytes() == plain.path.read_bytes()
    lying = dataclasses.replace(gz, diff_id=Digest.of_bytes(b"other"))
    with pytest.raises(DigestMismatchError, match="not its diff_id"):
        _uncompressed(lying, BlobStore(tmp_path / "out2"), "base test")


@pytest.mark.registry
def test_a_registry_base_names_each_blob_it_pulls(registry: Registry, golden_project: Path, tmp_path: Path) -> None:
    """Without a TTY, pulling a registry base is one named line per layer, so a slow registry is visible."""
    config, target = _golden(golden_project)
    image = read_layout(golden_project / "fakebase", tag="base")
    assert isinstance(image, Image)
    repo = f"test/base-{uuid.uuid4().hex[:8]}"
    digest = push(RegistryClient(registry.host, credentials=CredentialStore.anonymous()), repo, image)
    text = f"{registry.host}/{repo}@{digest}"
    pulled = dataclasses.replace(
        target, base=BaseSpec("registry", text, reference=parse_reference(text, origin="test"), digest=str(digest))
    )
    stream = io.StringIO()
    resolve_base(config, pulled, BlobStore(tmp_path / "store"), tmp_path / "staging", progress=LineProgress(stream))
    lines = stream.getvalue().splitlines()
    for layer in image.layers:
        assert any(f"{layer.digest.hex[:12]} from {registry.host}/{repo}" in line for line in lines), lines
    assert "\r" not in stream.getvalue()
