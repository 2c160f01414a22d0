"""A registry cache written by an attacker: what each mode uses, and what it refuses.

The attacker can push anything to the cache repository (tags, manifests, configs, blobs) and rewrite
blobs in the registry's storage, but does not hold the fleet secret. In the sealed mode every entry
must carry an HMAC under that secret over its kind, key, payload and blob descriptors, for the key
the reader computed itself; in the trust-free mode only layer entries are read, and re-derived
(tests/image/test_registry_cache.py builds through both).
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from reprobuild.errors import ConfigError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.image.cachesecret import SECRET_ENV, FleetSecret, fleet_secret
from reprobuild.image.registrycache import MANIFEST_TYPE, RegistryCache, cache_reference
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.digest import Digest
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.mediatypes import OCI_LAYER_GZIP
from reprobuild.oci.registry import RegistryClient
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Descriptor
from tests.testbed import Registry

FLEET = FleetSecret("the test's fleet", b"fleet-secret-0123456789abcdef")
KEY = "1" * 64
OTHER_KEY = "2" * 64


def a_layer(tmp_path: Path, text: bytes, compressor: Compressor | None = None) -> Layer:
    return write_layer(
        [LayerEntry.file("/usr/lib/python3/dist-packages/mod.py", text)],
        epoch=0,
        compressor=compressor or Compressor.gzip(),
        store=BlobStore(tmp_path / "written"),
    )


def cache_for(registry: Registry, tmp_path: Path, secret: FleetSecret | None = FLEET) -> RegistryCache:
    return RegistryCache(cache_reference(f"{registry.host}/adversarial/{tmp_path.name}"), secret=secret)


def honest_deps(cache: RegistryCache, layer: Layer, key: str = KEY) -> dict[str, Any]:
    payload = {"groups": [{"digest": str(layer.digest)}], "key": key, "licenses": {}}
    cache.put("deps", key, payload, [(layer.descriptor, layer.path)])
    return payload


def rewrite(cache: RegistryCache, tag: str, change: Any, *, to_tag: str | None = None) -> None:
    """Fetch ``tag``'s manifest and config, let ``change`` edit the config object, push it as ``to_tag``."""
    repo = cache.ref.repository
    with RegistryClient(cache.ref.api_host) as client:
        data, _, _ = client.get_manifest(repo, tag, accept=[MANIFEST_TYPE])
        manifest = json.loads(data)
        desc = manifest["config"]
        config = json.loads(fetch_bytes(client, repo, desc["digest"], desc["size"]))
        change(config)
        raw = canonical_json_bytes(config)
        digest = str(Digest.of_bytes(raw))
        client.put_blob(repo, digest, len(raw), lambda: io.BytesIO(raw))
        manifest["config"] = {"mediaType": desc["mediaType"], "digest": digest, "size": len(raw)}
        client.put_manifest(repo, to_tag or tag, canonical_json_bytes(manifest), MANIFEST_TYPE)


def fetch_bytes(client: RegistryClient, repo: str, digest: str, size: int) -> bytes:
    buf = io.BytesIO()
    client.get_blob(repo, digest, buf, size=size)
    return buf.getvalue()


def test_an_honest_sealed_entry_is_read_back(registry: Registry, tmp_path: Path) -> None:
    cache = cache_for(registry, tmp_path)
    layer = a_layer(tmp_path, b"x = 1\n")
    payload = honest_deps(cache, layer)
    store = BlobStore(tmp_path / "reader")
    entry = cache_for(registry, tmp_path).get("deps", KEY, store)
    assert entry is not None and dict(entry.payload) == payload
    assert entry.blobs == (layer.descriptor,) and store.has(layer.digest)


def test_a_payload_edited_under_the_old_seal_is_refused(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = cache_for(registry, tmp_path)
    honest = a_layer(tmp_path, b"x = 1\n")
    evil = a_layer(tmp_path, b"import os; os.system('evil')\n")
    honest_deps(cache, honest)
    cache.put("layer", "9" * 64, {"diff_id": str(evil.diff_id)}, [(evil.descriptor, evil.path)])  # evil's blob is there

    def point_at_evil(config: dict[str, Any]) -> None:
        config["blobs"] = [{"digest": str(evil.digest), "media_type": evil.media_type, "size": evil.size}]
        config["payload"]["groups"] = [{"digest": str(evil.digest)}]

    rewrite(cache, f"deps-{KEY}", point_at_evil)
    store = BlobStore(tmp_path / "reader")
    with caplog.at_level(logging.WARNING):
        assert cache_for(registry, tmp_path).get("deps", KEY, store) is None
    assert "seal does not verify" in caplog.text
    assert not store.has(evil.digest)  # nothing of a refused entry is fetched


def test_an_entry_swapped_between_keys_is_refused(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The sealed entry of one key, tagged as another's: its config names the first key."""
    cache = cache_for(registry, tmp_path)
    honest_deps(cache, a_layer(tmp_path, b"x = 1\n"))
    rewrite(cache, f"deps-{KEY}", lambda config: None, to_tag=f"deps-{OTHER_KEY}")
    with caplog.at_level(logging.WARNING):
        assert cache_for(registry, tmp_path).get("deps", OTHER_KEY, BlobStore(tmp_path / "reader")) is None
    assert "not of this key" in caplog.text


def test_an_entry_replayed_for_another_key_or_kind_is_refused(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same entry with its key (or kind) rewritten to the one asked for: the seal covers both."""
    cache = cache_for(registry, tmp_path)
    honest_deps(cache, a_layer(tmp_path, b"x = 1\n"))
    rewrite(cache, f"deps-{KEY}", lambda config: config.update(key=OTHER_KEY), to_tag=f"deps-{OTHER_KEY}")
    rewrite(cache, f"deps-{KEY}", lambda config: config.update(kind="base"), to_tag=f"base-{KEY}")
    reader = cache_for(registry, tmp_path)
    with caplog.at_level(logging.WARNING):
        assert reader.get("deps", OTHER_KEY, BlobStore(tmp_path / "reader")) is None
        assert reader.get("base", KEY, BlobStore(tmp_path / "reader")) is None
    assert caplog.text.count("seal does not verify") == 2


def test_an_entry_of_another_compressor_is_refused(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = cache_for(registry, tmp_path)
    zstd = a_layer(tmp_path, b"x = 1\n", Compressor.zstd())
    cache.push_layer(KEY, zstd)
    with caplog.at_level(logging.WARNING):
        got = cache_for(registry, tmp_path).fetch_layer(KEY, BlobStore(tmp_path / "reader"), OCI_LAYER_GZIP)
    assert got is None
    assert "this build writes" in caplog.text


@pytest.mark.parametrize("reader_secret", [FleetSecret("another fleet", b"another-secret-0123456789abcdef"), None])
def test_without_the_fleet_secret_nothing_sealed_is_used(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture, reader_secret: FleetSecret | None
) -> None:
    """A wrong secret refuses every entry; no secret (trust-free mode) reads only layers, never deps, base or facts."""
    cache = cache_for(registry, tmp_path)
    layer = a_layer(tmp_path, b"x = 1\n")
    honest_deps(cache, layer)
    cache.push_layer(KEY, layer)
    reader = cache_for(registry, tmp_path, reader_secret)
    store = BlobStore(tmp_path / "reader")
    with caplog.at_level(logging.WARNING):
        assert reader.get("deps", KEY, store) is None
        fetched = reader.fetch_layer(KEY, store, layer.media_type)
    if reader_secret is None:
        assert "trust-free mode" in reader.mode_line()
        assert fetched is not None and fetched.digest == layer.digest  # the caller re-derives it (LayerCache)
        assert "warning" not in caplog.text  # deps entries are not even looked up
        before = len(reader.pushed)
        reader.put("deps", OTHER_KEY, {"key": OTHER_KEY}, [])
        assert len(reader.pushed) == before  # and never written without a secret
    else:
        assert fetched is None
        assert caplog.text.count("seal does not verify") == 2


def test_an_unsealed_entry_is_refused_in_the_sealed_mode(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A layer entry pushed by a trust-free machine (or anyone without the secret) carries no seal."""
    layer = a_layer(tmp_path, b"x = 1\n")
    cache_for(registry, tmp_path, None).push_layer(KEY, layer)
    with caplog.at_level(logging.WARNING):
        assert cache_for(registry, tmp_path).fetch_layer(KEY, BlobStore(tmp_path / "reader"), layer.media_type) is None
    assert "seal does not verify" in caplog.text


def test_a_blob_rewritten_in_the_registry_storage_is_refused(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The registry serves other bytes under the sealed digest: the download fails its digest check, the
    blob never enters the store, and the build goes on without the cache."""
    cache = cache_for(registry, tmp_path)
    layer = a_layer(tmp_path, b"x = 1\n" * 1000)
    honest_deps(cache, layer)
    data = registry.root / "docker/registry/v2/blobs/sha256" / layer.digest.hex[:2] / layer.digest.hex / "data"
    data.write_bytes(a_layer(tmp_path, b"y = 2\n" * 1000).path.read_bytes()[: layer.size].ljust(layer.size, b"\0"))
    reader = cache_for(registry, tmp_path)
    store = BlobStore(tmp_path / "reader")
    with caplog.at_level(logging.WARNING):
        assert reader.get("deps", KEY, store) is None
    assert not store.has(layer.digest)
    assert "building without it" in caplog.text and reader.disabled


def test_fleet_secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    assert fleet_secret(tmp_path, None) is None
    with pytest.raises(ConfigError, match="cannot read") as missing:
        fleet_secret(tmp_path, "secrets/cache")
    assert "openssl rand -hex 32" in (missing.value.hint or "")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "cache").write_text("short\n")
    with pytest.raises(ConfigError, match="fewer than 16"):
        fleet_secret(tmp_path, "secrets/cache")
    (tmp_path / "secrets" / "cache").write_text("a" * 64 + "\n")
    from_file = fleet_secret(tmp_path, "secrets/cache")
    assert from_file is not None and from_file.origin == str(tmp_path / "secrets" / "cache")
    assert "a" * 64 not in repr(from_file)  # never printed
    monkeypatch.setenv(SECRET_ENV, "b" * 32)
    from_env = fleet_secret(tmp_path, "secrets/cache")
    assert from_env is not None and from_env.origin == f"${SECRET_ENV}"
    assert from_env.seal(b"x") != from_file.seal(b"x")


def test_the_seal_covers_every_blob_descriptor(tmp_path: Path) -> None:
    """The sealed body names each blob's digest, size and media type: none can change under the seal."""
    from reprobuild.image.registrycache import _body

    desc = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", Digest.of_bytes(b"a"), 1)
    body = canonical_json_bytes(_body("deps", KEY, {}, [desc]))
    tag = FLEET.seal(body)
    for other in (
        Descriptor(desc.media_type, Digest.of_bytes(b"b"), 1),
        Descriptor(desc.media_type, desc.digest, 2),
        Descriptor("application/vnd.oci.image.layer.v1.tar+zstd", desc.digest, 1),
    ):
        assert not FLEET.verifies(canonical_json_bytes(_body("deps", KEY, {}, [other])), tag)
    assert FLEET.verifies(body, tag)
