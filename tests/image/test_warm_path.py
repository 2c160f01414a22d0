"""The warm path: after an app change only the project wheel is installed; the third-party layers are
reused as a whole (image/depcache.py), and the result is byte-identical to a cold build."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from reprobuild.cachekey import seal
from reprobuild.config import LayerPolicy, load_config
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.image.build import ImageResult, build_image
from reprobuild.image.depcache import dependency_key
from reprobuild.image.interpreter import Interpreter
from reprobuild.image.projectwheel import wheel_step
from reprobuild.image.pyenv import ImagePaths, install_wheels
from reprobuild.image.wheels import WheelPin

pytestmark = pytest.mark.network  # the locked wheels come from the package index (then from the cache)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache and a cache key of this test's own."""
    monkeypatch.setenv("REPRO_BUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("REPRO_BUILD_CACHE_KEY", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def installs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The wheel file names of every install_wheels call of the builds that follow."""
    calls: list[list[str]] = []

    def spy(wheels: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(sorted(pin.filename for pin, _ in wheels))
        install_wheels(wheels, *args, **kwargs)

    monkeypatch.setattr("reprobuild.image.build.install_wheels", spy)
    return calls


def build(root: Path, *, use_cache: bool = True, log: list[str] | None = None) -> ImageResult:
    return build_image(
        load_config(root),
        "cpu",
        project_wheel=wheel_step(),
        use_cache=use_cache,
        log=(log.append if log is not None else lambda s: None),
    )


def app_change(root: Path, n: int = 1) -> None:
    module = root / "src" / "golden_app" / "__init__.py"
    module.write_text(module.read_text() + f"\n# a one-line app change ({n})\n")


def entries(cache: Path) -> list[Path]:
    """The dependency-layer entries (sealed with an HMAC; the per-layer entries carry a self-hash)."""
    return [p for p in (cache / "layers").glob("*.json") if "hmac" in json.loads(p.read_text())]


def test_app_change_installs_only_the_project_wheel_and_equals_a_cold_build(
    golden_project: Path, cache: Path, installs: list[list[str]]
) -> None:
    first = build(golden_project)
    # The third-party wheels on their own (while the project wheel builds), then the project's.
    assert [[n.split("-")[0] for n in call] for call in installs] == [["six"], ["golden_app"]]
    assert len(entries(cache)) == 1
    app_change(golden_project)
    log: list[str] = []
    warm = build(golden_project, log=log)
    assert installs[2:] == [installs[1]]  # only the project wheel
    assert any("1 reused as layers from the cache" in line for line in log)
    changed = [b.holds for b, a in zip(first.layers, warm.layers, strict=True) if b.digest != a.digest]
    assert changed == ["project golden-app"]
    cold = build(golden_project, use_cache=False)
    assert installs[3:] == installs[:2]
    assert cold.digest == warm.digest
    assert [r.to_dict() for r in cold.layers] == [r.to_dict() for r in warm.layers]
    assert cold.wheels == warm.wheels


def test_warm_archive_is_byte_identical_to_a_cold_one(golden_project: Path, cache: Path, tmp_path: Path) -> None:
    build(golden_project)
    app_change(golden_project)
    build(golden_project)
    warm = (golden_project / "build" / "cpu" / "image.tar").read_bytes()
    shutil.rmtree(cache)
    build(golden_project)
    assert (golden_project / "build" / "cpu" / "image.tar").read_bytes() == warm


@pytest.mark.usefixtures("cache")
def test_entry_sealed_by_another_key_is_evicted_and_rebuilt(
    golden_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    installs: list[list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = build(golden_project)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "another-machine"))
    with caplog.at_level(logging.WARNING):
        second = build(golden_project)
    assert "not sealed by this machine's cache key" in caplog.text
    assert installs[2:] == installs[:2]
    assert second.digest == first.digest


def test_an_entry_edited_with_the_key_still_needs_intact_blobs(
    golden_project: Path, cache: Path, installs: list[list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    """Even a well-sealed entry is not used when the blob it names does not hash to its digest."""
    first = build(golden_project)
    [entry] = entries(cache)
    digest = json.loads(entry.read_text())["payload"]["groups"][0]["layer"]["digest"]
    blob = cache / "blobs" / "sha256" / digest.removeprefix("sha256:")
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        second = build(golden_project)
    assert "is corrupt" in caplog.text
    assert installs[2:] == installs[:2]
    assert second.digest == first.digest
    assert len(entries(cache)) == 1  # written anew


def test_project_file_a_dependency_also_holds_means_a_full_install(
    golden_project: Path, cache: Path, installs: list[list[str]]
) -> None:
    """Which copy of a shared path wins is the full install's to say: the warm path steps aside."""
    build(golden_project)
    [entry] = entries(cache)
    data = json.loads(entry.read_text())
    payload = data["payload"]
    project_file = "/usr/local/lib/python3.11/dist-packages/golden_app/__init__.py"
    payload["paths"] = sorted({*payload["paths"], project_file})
    tag = seal(canonical_json_bytes(payload))
    assert tag is not None
    entry.write_text(json.dumps({"hmac": tag, "payload": payload}))
    app_change(golden_project)
    log: list[str] = []
    warm = build(golden_project, log=log)
    assert any(f"holds {project_file}, which a dependency holds too" in line for line in log)
    # The project wheel alone, then (for the clash) every wheel at once.
    assert installs[2:] == [installs[1], sorted(installs[0] + installs[1])]
    # A full install gives what the build that installs the project on its own gives.
    assert warm.digest == build(golden_project, use_cache=False).digest
    assert installs[4:] == installs[:2]


def test_every_input_changes_the_dependency_key(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(Path(__file__).parent / "golden-project")
    target = config.target("cpu")
    pin = WheelPin("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl", "0" * 64, 1)
    paths = ImagePaths("/usr/bin/python3.11", "/usr/local/lib/python3.11/dist-packages")
    interpreter = Interpreter(Path("/usr/bin/python3.11"), "3.11.2", "cpython", "cpython-311")
    gzip = {"algorithm": "gzip", "level": 6}
    args: dict[str, Any] = {
        "target": target,
        "paths": paths,
        "interpreter": interpreter,
        "policy": target.layers,
        "base_layers": 1,
        "has_project": True,
        "compressor": gzip,
        "media_type": "application/vnd.oci.image.layer.v1.tar+gzip",
        "mtime": 315532800,
    }
    key = dependency_key([pin], **args)
    assert dependency_key([pin], **args) == key
    variants: list[tuple[list[WheelPin], dict[str, Any]]] = [
        ([dataclasses.replace(pin, sha256="1" * 64)], args),
        ([], args),
        ([pin], {**args, "paths": ImagePaths("/usr/bin/python3.11", "/usr/lib/python3/dist-packages")}),
        ([pin], {**args, "interpreter": Interpreter(Path("/x"), "3.11.9", "cpython", "cpython-311")}),
        ([pin], {**args, "policy": LayerPolicy(threshold_mb=10)}),
        ([pin], {**args, "base_layers": 2}),
        ([pin], {**args, "has_project": False}),
        ([pin], {**args, "compressor": {"algorithm": "gzip", "level": 9}}),
        ([pin], {**args, "media_type": "application/vnd.oci.image.layer.v1.tar+zstd"}),
        ([pin], {**args, "mtime": 0}),
    ]
    keys = {dependency_key(pins, **kw) for pins, kw in variants}
    assert key not in keys and len(keys) == len(variants)
    monkeypatch.setattr("reprobuild.image.depcache.__version__", "0.0.0+other")
    assert dependency_key([pin], **args) not in {key, *keys}
    # Another commit of the same version: its own source files, so its own entries.
    monkeypatch.setattr("reprobuild.image.depcache.__version__", "0.1.0")
    monkeypatch.setattr("reprobuild.image.depcache.code_digest", lambda: "0" * 64)
    assert dependency_key([pin], **args) not in {key, *keys}


def test_code_digest_follows_every_source_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import reprobuild.distribution as dist

    package = tmp_path / "reprobuild"
    shutil.copytree(Path(dist.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(dist, "__file__", str(package / "distribution.py"))
    dist.code_digest.cache_clear()
    try:
        before = dist.code_digest()
        (package / "oci" / "layer.py").write_text((package / "oci" / "layer.py").read_text() + "\n# changed\n")
        dist.code_digest.cache_clear()
        assert dist.code_digest() != before
    finally:
        dist.code_digest.cache_clear()
