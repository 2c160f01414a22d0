"""The image's project-wheel path: the backend's hooks in a cached, verified environment.

The wheel must be byte for byte the one ``uv build`` gives (every fixture project, both ways), and the
cached environment is used only while its sealed file list matches it exactly: a missing, edited, added,
unsealed or re-keyed entry is created again, never used.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reprobuild.cachekey import seal
from reprobuild.config import Config, load_config
from reprobuild.errors import WheelError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.lock.inputs import build_lock_path
from reprobuild.wheel import backendenv
from reprobuild.wheel.backendenv import BackendEnv, backend_env, env_key
from reprobuild.wheel.build import build_wheel
from reprobuild.wheel.buildroot import build_root_path
from reprobuild.wheel.hookrunner import unmet
from tests.wheel.fixtures import PACKAGES, commit_all


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_BUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("REPRO_BUILD_CACHE_KEY", raising=False)


#: Every fixture project that builds a wheel (``unreproducible`` differs between any two builds on purpose).
BUILDABLE = sorted(p.name for p in PACKAGES.iterdir() if p.is_dir() and p.name != "unreproducible")


def _wheel(config: Config, out: Path, *, cached_env: bool) -> bytes:
    record = build_wheel(config, out_dir=out, sdist=False, cached_env=cached_env)
    artifact = record.artifact("wheel")
    assert artifact is not None
    return (out / artifact.filename).read_bytes()


@pytest.mark.parametrize("name", BUILDABLE)
def test_hooks_in_the_cached_environment_give_uv_builds_wheel(
    name: str, fresh_project: Callable[..., Config], tmp_path: Path
) -> None:
    config = fresh_project(name)
    plain = _wheel(config, tmp_path / "uv", cached_env=False)
    first = _wheel(config, tmp_path / "hooks-new-env", cached_env=True)
    again = _wheel(config, tmp_path / "hooks-cached-env", cached_env=True)
    assert first == plain
    assert again == plain
    # One environment for the project's lock, sealed.
    envs = tmp_path / "cache" / "buildenvs"
    assert len(list(envs.glob("*.json"))) == 1


def _env(config: Config) -> tuple[BackendEnv, Path, str]:
    lock = build_lock_path(config)
    env = backend_env(lock, config.python)
    return env, env.root.parent / f"{env.root.name}.json", env_key(lock.read_bytes(), config.python)


def _recreated(
    config: Config, caplog: pytest.LogCaptureFixture, why: str, monkeypatch: pytest.MonkeyPatch
) -> BackendEnv:
    """Ask for the environment again; it must be created anew (uv asked), with a warning naming ``why``."""
    made: list[Path] = []
    real = backendenv._create

    def spy(root: Path, python: str, lock: Path, *, offline: bool) -> None:
        made.append(root)
        real(root, python, lock, offline=offline)

    monkeypatch.setattr(backendenv, "_create", spy)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="reprobuild.wheel.backendenv"):
        env, _record, _key = _env(config)
    assert made == [env.root]
    assert why in caplog.text
    return env


def test_a_sound_entry_is_reused_without_uv(
    fresh_project: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = fresh_project("hatch_pure")
    env, record, key = _env(config)
    assert env.root.name == key and record.is_file()

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a sound entry must not be created again")

    monkeypatch.setattr(backendenv, "_create", refuse)
    assert _env(config)[0] == env


def test_on_waiting_is_called_once_the_build_only_waits_on_the_backend(
    fresh_project: Callable[..., Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``image`` imports the rest of its build when ``on_waiting`` is called: by then the source is exported
    and the environment checked, and the backend has not run; an environment being made calls it first."""
    config = fresh_project("hatch_pure")
    export = build_root_path(config.project.name) / "src"
    seen: list[object] = []
    real_create = backendenv._create

    def create(*args: Any, **kwargs: Any) -> None:
        seen.append("create")
        real_create(*args, **kwargs)

    monkeypatch.setattr(backendenv, "_create", create)

    def waiting() -> None:
        seen.append((export.joinpath("pyproject.toml").is_file(), export.parent.joinpath("out", "wheel").exists()))

    record = build_wheel(config, out_dir=tmp_path / "new-env", sdist=False, cached_env=True, on_waiting=waiting)
    assert "create" in seen and seen.index("create") > 0, "called before the environment was made"
    assert seen[-1] == (True, False), "called once exported, before the backend wrote anything"
    seen.clear()
    real_listing = backendenv.tree_listing

    def listing(root: Path) -> dict[str, str]:
        time.sleep(1)  # a large environment: its check outlasts the export
        try:
            return real_listing(root)
        finally:
            seen.append("checked")

    monkeypatch.setattr(backendenv, "tree_listing", listing)
    again = build_wheel(config, out_dir=tmp_path / "cached-env", sdist=False, cached_env=True, on_waiting=waiting)
    assert seen == ["checked", (True, False)], "called once the environment is checked too"
    assert again.artifacts == record.artifacts


@pytest.mark.parametrize(
    ("poison", "why"),
    [
        ("edit", "its files differ from the sealed list"),
        ("add", "its files differ from the sealed list"),
        ("remove", "its files differ from the sealed list"),
        ("reseal", "not sealed by this machine's cache key"),
        ("no-list", "no sealed file list"),
        ("other-key", "payload.key is 'ffff"),
    ],
)
def test_a_poisoned_or_incomplete_entry_is_created_again(
    poison: str,
    why: str,
    fresh_project: Callable[..., Config],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = fresh_project("hatch_pure")
    env, record, key = _env(config)
    site = next(env.root.glob("lib/python*/site-packages"))
    module = site / "hatchling" / "build.py"
    # A copy, not a link into uv's cache: the edit below must not reach uv's cache (and come back from it).
    assert module.stat().st_nlink == 1
    if poison == "edit":
        module.write_text(module.read_text() + "\nimport os; os.system('echo owned')\n")
    elif poison == "add":
        (site / "sitecustomize.py").write_text("print('owned')\n")
    elif poison == "remove":
        module.unlink()
    elif poison == "reseal":
        # Someone who can write the cache but not read the key: a listing of their own, with a made-up tag.
        data = json.loads(record.read_text())
        (site / "sitecustomize.py").write_text("print('owned')\n")
        data["payload"]["files"] = backendenv.tree_listing(env.root)
        data["hmac"] = "0" * 64
        record.write_text(json.dumps(data))
    elif poison == "no-list":
        record.unlink()  # an interrupted creation leaves the environment without its list
    elif poison == "other-key":
        data = json.loads(record.read_text())
        other = dict(data["payload"], key="f" * 64)
        other_tag = seal(canonical_json_bytes(other))
        record.write_text(json.dumps({"hmac": other_tag, "payload": other}))
    again = _recreated(config, caplog, why, monkeypatch)
    assert again.root.name == key
    assert not (next(again.root.glob("lib/python*/site-packages")) / "sitecustomize.py").exists()
    assert "owned" not in (next(again.root.glob("lib/python*/site-packages")) / "hatchling" / "build.py").read_text()


def test_the_key_follows_the_lock_and_the_python_request() -> None:
    lock = b"hatchling==1.33.0 --hash=sha256:" + b"0" * 64
    assert env_key(lock, "3.11", uv="0.13.9") == env_key(lock, "3.11", uv="0.13.9")
    assert env_key(lock, "3.11", uv="0.13.9") != env_key(lock + b"\n", "3.11", uv="0.13.9")
    assert env_key(lock, "3.11", uv="0.13.9") != env_key(lock, "3.12", uv="0.13.9")
    assert env_key(lock, "3.11", uv="0.13.9") != env_key(lock, "3.11", uv="0.14.0")


def test_a_backend_asking_for_what_the_lock_does_not_pin_stops_the_build(
    fresh_project: Callable[..., Config], tmp_path: Path
) -> None:
    config = fresh_project("hatch_pure")
    env = backend_env(build_lock_path(config), config.python)
    assert unmet(["hatchling", "packaging>=1", "colorama; python_version < '3'"], env) == []
    assert unmet(["hatchling<1", "not-installed-anywhere"], env) == ["hatchling<1", "not-installed-anywhere"]
    # Through the build: the in-tree backend's get_requires_for_build_wheel names what build-requires.txt
    # lists; a name added after locking is not in the environment.
    intree = fresh_project("intree_backend")
    (intree.root / "build-requires.txt").write_text("six\nnot-installed-anywhere>=1\n")
    commit_all(intree.root, "ask for more")
    with pytest.raises(WheelError, match="not-installed-anywhere>=1") as caught:
        build_wheel(load_config(intree.root), out_dir=tmp_path / "out", sdist=False, cached_env=True)
    assert "repro-build lock" in (caught.value.hint or "")
    assert not (tmp_path / "out").exists()
