"""`image --cache REF`: a cache shared through a registry, read back on a machine state with an empty local
cache. Sealed mode (fleet secret): a full hit downloads and installs no third-party wheel and writes no layer.
Trust-free mode: every layer is re-derived from its inputs; a tampered entry is rebuilt, never used.
(tests/adversarial/test_registry_cache.py: what an attacker with write access to the registry can do.)"""

from __future__ import annotations

import functools
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reprobuild.config import load_config
from reprobuild.errors import ReproBuildError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.image.build import ImageResult, build_image
from reprobuild.image.cachesecret import SECRET_ENV
from reprobuild.image.projectwheel import wheel_step
from reprobuild.image.pyenv import install_wheels
from reprobuild.image.registrycache import CONFIG_TYPE, MANIFEST_TYPE, cache_reference
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.digest import Digest
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.registry import RegistryClient
from reprobuild.oci.tarwriter import LayerEntry
from tests.testbed import Registry

pytestmark = pytest.mark.network  # the locked wheels come from the package index (then from the cache)


SECRET = "image-test-fleet-secret-0123456789"


@dataclass(frozen=True)
class SharedCache:
    """A registry cache ``ref`` and builds of the golden ``project`` through it, each on a machine state of
    its own (its own cache directory and cache key under ``tmp``) and with a fleet secret or none."""

    project: Path
    ref: str
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def host(self) -> str:
        return self.ref.split("/", 1)[0]

    @property
    def repo(self) -> str:
        return self.ref.split("/", 1)[1]

    def machine(self, name: str, *, secret: str | None = SECRET) -> None:
        """From now on, run as the machine state ``name`` (``a``, ``b``, …) with the fleet ``secret``."""
        self.monkeypatch.setenv("REPRO_BUILD_CACHE", str(self.tmp / f"cache-{name}"))
        self.monkeypatch.setenv("XDG_CONFIG_HOME", str(self.tmp / f"cache-{name}-config"))
        if secret is None:
            self.monkeypatch.delenv(SECRET_ENV, raising=False)
        else:
            self.monkeypatch.setenv(SECRET_ENV, secret)

    def build(self, machine: str, *, secret: str | None = SECRET) -> ImageResult:
        """Build on the machine state ``machine`` with the fleet ``secret``, sharing through the cache."""
        self.machine(machine, secret=secret)
        return build_image(
            load_config(self.project),
            "cpu",
            project_wheel=wheel_step(),
            cache_ref=self.ref,
            log=logging.getLogger("t").warning,
        )

    def tags(self, kind: str) -> list[str]:
        """The cache's tags of entries of ``kind`` (``layer``, ``deps``, …)."""
        with RegistryClient(self.host) as client:
            return sorted(t for t in client.list_tags(self.repo) if t.startswith(f"{kind}-"))


@pytest.fixture
def shared(golden_project: Path, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SharedCache:
    """The golden project and a cache repository of this test's own on the test registry."""
    return SharedCache(golden_project, f"{registry.host}/speed-cache/{tmp_path.name}", tmp_path, monkeypatch)


def forbid(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make each of ``names`` (``module.attr``) fail the test when called."""

    def refuse(name: str) -> Any:
        def called(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"{name} ran on a full hit of the registry cache")

        return called

    for name in names:
        monkeypatch.setattr(name, refuse(name))


def test_sealed_full_hit_fetches_and_installs_no_wheel(
    shared: SharedCache, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    first = shared.build("a")
    assert [len(shared.tags(kind)) for kind in ("deps", "facts", "inventory")] == [1, 1, 1]
    assert len(shared.tags("layer")) == len(first.layers) - 1  # every layer but the base's
    # Another machine state: another cache key, an empty local cache.
    forbid(
        monkeypatch,
        "reprobuild.image.build._locked_wheels",  # no wheel downloaded (nor read from a cache)
        "reprobuild.image.buildcache.inspect_base",  # the base facts come from the registry
        "reprobuild.attest.sbom.base_inventory",  # and so does the base's inventory for the SBOMs
        "reprobuild.image.build.write_layer",  # no layer written: the project and app layers are entries too
    )
    installed: list[list[str]] = []

    def spy(wheels: list[tuple[Any, Path]], *args: Any, **kwargs: Any) -> None:
        installed.append([pin.name for pin, _ in wheels])
        install_wheels(wheels, *args, **kwargs)

    monkeypatch.setattr("reprobuild.image.build.install_wheels", spy)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        second = shared.build("b")
    assert second.digest == first.digest
    assert installed == [["golden-app"]]  # the project wheel only
    assert "sealed mode" in caplog.text and "warning:" not in caplog.text
    assert "entries used, 0 pushed" in caplog.text
    # The SBOMs say the same as the first build's, though no third-party wheel was read.
    for name in ("sbom.spdx.json", "sbom.cdx.json"):
        assert (second.layout.parent / name).read_bytes() == (first.layout.parent / name).read_bytes()


def test_trust_free_mode_rederives_every_layer(
    shared: SharedCache, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the secret only layers are read, each after its inputs are installed and its tar hashed."""
    first = shared.build("a")
    written: list[str] = []

    def spy(entries: list[LayerEntry], **kwargs: Any) -> Layer:
        written.append(str(kwargs.get("description")))
        return write_layer(entries, **kwargs)

    monkeypatch.setattr("reprobuild.image.build.write_layer", spy)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        second = shared.build("b", secret=None)
    assert second.digest == first.digest
    assert written == []  # every layer came from the registry, none was compressed again
    assert "trust-free mode" in caplog.text and "warning:" not in caplog.text


def test_wrong_secret_builds_everything_and_the_same_image(
    shared: SharedCache, caplog: pytest.LogCaptureFixture
) -> None:
    first = shared.build("a")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        second = shared.build("b", secret="another-fleet-0123456789abcdef")
    assert second.digest == first.digest
    assert "seal does not verify" in caplog.text and "0 entries used" in caplog.text


def test_tampered_registry_entry_is_rebuilt_not_used(shared: SharedCache, caplog: pytest.LogCaptureFixture) -> None:
    """Trust-free mode: the attacker re-points every layer entry at a layer of their own, with a config
    that claims its diff_id (no seal is needed without a secret): the re-derivation refuses each one."""
    first = shared.build("a", secret=None)
    repo = shared.repo
    evil = write_layer(
        [LayerEntry.file("/usr/local/lib/python3.11/dist-packages/six.py", b"import os; os.system('evil')\n")],
        epoch=0,
        compressor=Compressor.gzip(),
        store=BlobStore(shared.tmp / "evil"),
    )
    with RegistryClient(shared.host) as client:
        client.put_blob(repo, str(evil.digest), evil.size, lambda: evil.path.open("rb"))
        for tag in shared.tags("layer"):
            key = tag.removeprefix("layer-")
            body = {
                "blobs": [{"digest": str(evil.digest), "media_type": evil.media_type, "size": evil.size}],
                "key": key,
                "kind": "layer",
                "payload": {"diff_id": str(evil.diff_id)},
                "seal": None,
            }
            config = canonical_json_bytes(body)
            config_digest = str(Digest.of_bytes(config))
            client.put_blob(repo, config_digest, len(config), functools.partial(io.BytesIO, config))
            manifest = {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config)},
                "layers": [evil.descriptor.to_json()],
            }
            client.put_manifest(repo, tag, json.dumps(manifest).encode(), MANIFEST_TYPE)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        second = shared.build("b", secret=None)
    assert second.digest == first.digest
    assert all(layer.digest != str(evil.digest) for layer in second.layers)
    assert caplog.text.count("not what its inputs give") == len(first.layers) - 1
    # The honest layers were pushed over the tampered tags: a third machine state gets them.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        third = shared.build("c", secret=None)
    assert third.digest == first.digest
    assert "warning:" not in caplog.text


def test_a_push_to_the_cache_registry_mounts_the_cached_layers(shared: SharedCache, registry: Registry) -> None:
    """`--push` to the registry of `--cache`: the layers the cache holds are mounted, not uploaded."""
    from reprobuild.oci.location import parse_location
    from reprobuild.oci.progress import Progress, Task
    from reprobuild.oci.transport import write_location

    result = shared.build("a")
    notes: dict[str, str | None] = {}

    class Notes(Progress):
        def finished(self, task: Task, error: BaseException | None) -> None:
            notes[task.description] = task.result

    location = parse_location(f"{registry.host}/speed-cache/app-{shared.tmp.name}:cpu")
    digest = write_location(
        location, result.image, shared.tmp, progress=Notes(), mount_from=cache_reference(shared.ref)
    )
    assert str(digest) == result.digest
    mounted = [d for d, note in notes.items() if note and note.startswith("mounted from")]
    assert len(mounted) == len(result.layers) - 1  # all but the fake base, which the cache does not hold


def test_an_index_push_to_the_cache_registry_mounts_the_cached_layers(
    shared: SharedCache, registry: Registry, tmp_path: Path
) -> None:
    """`image --push` of a multi-platform target pushes its index through the same step as one image's
    (cli/imagesteps.push_built): the platforms' layers that `--cache` holds are mounted, not uploaded."""
    from reprobuild.attest.referrers import fallback_tag, layout_referrers
    from reprobuild.cli.imagesteps import push_built
    from reprobuild.image.multiplatform import index_of
    from reprobuild.oci.progress import Progress, Task

    result = shared.build("a")
    index = index_of([result.image])
    notes: dict[str, str | None] = {}

    class Notes(Progress):
        def finished(self, task: Task, error: BaseException | None) -> None:
            notes[task.description] = task.result

    push = f"{registry.host}/speed-cache/{{target}}-index-{tmp_path.name}:v1"
    pinned, attached = push_built(push, "app", index, tmp_path, [result], cache_ref=shared.ref, progress=Notes())
    assert pinned == f"{registry.host}/speed-cache/app-index-{tmp_path.name}@{index.digest}"
    mounted = [d for d, note in notes.items() if note and note.startswith("mounted from")]
    assert len(mounted) == len(result.layers) - 1  # all but the fake base, which the cache does not hold
    # The image's attachments (its SBOMs: the provenance comes from the CLI) went up in the same push.
    count = len(layout_referrers(result.layout, result.image.digest))
    tag = fallback_tag(result.image.digest)
    assert count and attached == {"count": count, "how": f"tag {tag}"}
    with RegistryClient(registry.host) as client:
        assert set(client.list_tags(f"speed-cache/app-index-{tmp_path.name}")) == {"v1", tag}


def test_unreachable_registry_cache_is_a_warning(
    golden_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.testbed import free_port

    monkeypatch.setenv("REPRO_BUILD_REGISTRY_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("REPRO_BUILD_REGISTRY_DEADLINE", "3")
    nobody = SharedCache(golden_project, f"127.0.0.1:{free_port()}/nobody/home", tmp_path, monkeypatch)
    with caplog.at_level(logging.WARNING):
        result = nobody.build("a")
    assert result.digest.startswith("sha256:")
    assert caplog.text.count("building without it") == 1


@pytest.mark.parametrize("text", ["host.example/cache:tag", "host.example/cache@sha256:" + "0" * 64])
def test_cache_reference_is_a_repository(text: str) -> None:
    with pytest.raises(ReproBuildError, match="a cache is a repository"):
        cache_reference(text)


def test_debian_base_comes_from_the_registry_cache_without_a_deb(
    shared: SharedCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The embedded Debian base and its standard-library byte-code, built from its lock on one machine state,
    are taken whole by another (no .deb read, nothing assembled, nothing compiled); with another fleet's
    secret, or none, nothing is taken."""
    import shutil

    from reprobuild.image.cachesecret import FleetSecret
    from reprobuild.image.debianbase import debian_base, import_shared_base, share_base, shared_base_image
    from reprobuild.image.registrycache import RegistryCache
    from reprobuild.image.stdlibbytecode import share_stdlib
    from tests.adversarial.test_poisoned_cache import _seed_debs
    from tests.image.conftest import EXAMPLE

    project = tmp_path / "hello-ml"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("build", "dist"))
    config = load_config(project)
    target = config.target("cpu")
    ref = cache_reference(shared.ref)
    fleet = FleetSecret("test", SECRET.encode())

    def machine(name: str) -> Path:
        shared.machine(name)  # the secret is the RegistryCache's, passed to it below
        (tmp_path / f"{name}-staging").mkdir()
        return tmp_path / f"cache-{name}"

    _seed_debs(project, machine("a"))
    honest, _ = debian_base(config, target, tmp_path / "a-staging" / "s")
    share_base(RegistryCache(ref, secret=fleet), config, target)
    base_a = shared_base_image(config, target)
    assert base_a is not None
    share_stdlib(RegistryCache(ref, secret=fleet), base_a, name=target.base.text, fetch=False)
    assert len(shared.tags("stdlib")) == 1

    forbid(monkeypatch, "reprobuild.base.debian.build.build_base", "reprobuild.image.stdlibbytecode.write_stdlib_layer")
    for name, secret in (("wrong", FleetSecret("other", b"another-fleet-0123456789abcdef")), ("none", None)):
        cache = machine(name)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            import_shared_base(RegistryCache(ref, secret=secret), config, target)
        assert not (cache / "bases").exists() or not any((cache / "bases").iterdir())
        assert ("seal does not verify" in caplog.text) == (secret is not None)

    cache_b = machine("b")
    reader = RegistryCache(ref, secret=fleet)
    import_shared_base(reader, config, target)
    base_b = shared_base_image(config, target)
    assert base_b is not None and base_b.digest == base_a.digest
    share_stdlib(reader, base_b, name=target.base.text, fetch=True)
    assert sorted(p.suffix for p in (cache_b / "bases").iterdir()) == [".json", ".json"]  # records, blobs in the store
    again, _ = debian_base(config, target, tmp_path / "b-staging" / "s")
    assert again.digest == honest.digest
    assert {tag.split("-")[0] for tag in reader.used} >= {"base", "stdlib"}


def test_a_build_without_the_cache_never_asks_the_registry_cache(
    shared: SharedCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`verify` rebuilds with `use_cache=False` (and names no cache): no registry cache is even opened."""
    import inspect

    from reprobuild.manifest import verify

    source = inspect.getsource(verify)
    assert "use_cache=False" in source and "cache_ref" not in source
    forbid(monkeypatch, "reprobuild.image.build.RegistryCache")
    shared.machine("a")
    result = build_image(
        load_config(shared.project),
        "cpu",
        project_wheel=wheel_step(),
        use_cache=False,
        cache_ref=shared.ref,
    )
    assert result.digest.startswith("sha256:")


def test_cache_blob_transfers_are_named_progress_tasks(registry: Registry, tmp_path: Path) -> None:
    """Each blob fetched from or pushed to the cache is a task (a line of its own without a TTY)."""
    from reprobuild.cli.progress import LineProgress
    from reprobuild.image.cachesecret import FleetSecret
    from reprobuild.image.registrycache import RegistryCache

    stream = io.StringIO()
    ref = cache_reference(f"{registry.host}/speed-cache/progress-{tmp_path.name}")
    cache = RegistryCache(ref, secret=FleetSecret("test", SECRET.encode()), progress=LineProgress(stream))
    layer = write_layer(
        [LayerEntry.file("/app/x.py", b"x = 1\n")], epoch=0, compressor=Compressor.gzip(), store=BlobStore(tmp_path)
    )
    cache.push_layer("3" * 64, layer)
    assert cache.fetch_layer("3" * 64, BlobStore(tmp_path / "reader"), layer.media_type) is not None
    lines = stream.getvalue().splitlines()
    where = f"{registry.host}/speed-cache/progress-{tmp_path.name}"
    short = layer.digest.hex[:12]
    assert any(line.startswith(f"pushing cache layer blob {short} to {where}: done") for line in lines), lines
    assert any(line.startswith("pushing cache entry layer-3333") for line in lines), lines
    assert any(line.startswith(f"pulling cache layer blob {short} from {where}: done") for line in lines), lines
