"""Shared fixtures: a clean environment, the Docker engine, a loopback registry, golden values and the
golden project built once; and the markers a test gets from the fixtures it uses."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.golden import Golden, updating
from tests.testbed import Engine, Registry, connect_engine, mount_other_fs, start_registry

#: Markers a test gets from the fixtures it uses, directly or through other fixtures, so that
#: ``-m "not registry"`` deselects every test that starts the registry, however it asks for it.
FIXTURE_MARKERS: dict[str, tuple[str, ...]] = {
    "engine": ("engine",),
    "registry": ("registry",),
    "golden": ("golden",),
    "built_golden": ("network", "slow"),  # `image` of the golden project: its wheel comes from the index
    "locked_base": ("network",),  # tests/base: a Debian lock made against the mirror
    "debian_rootfs_tar": ("network", "slow"),  # tests/oci: mmdebstrap
}


def pytest_itemcollected(item: pytest.Item) -> None:
    """Add the :data:`FIXTURE_MARKERS` of every fixture ``item`` uses."""
    for fixture in getattr(item, "fixturenames", ()):
        for marker in FIXTURE_MARKERS.get(fixture, ()):
            if item.get_closest_marker(marker) is None:
                item.add_marker(marker)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see an ambient SOURCE_DATE_EPOCH or colour settings (apko does the same)."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """The Docker engine (fails under CI when it is not running)."""
    yield from connect_engine()


@pytest.fixture(scope="session")
def golden() -> Golden:
    """Golden values to compare with (tests/golden.py); ``nox -s golden`` refreshes them."""
    return Golden(update=updating())


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    """A ``docker-registry`` on 127.0.0.1 with storage in a temp dir, for the whole test session."""
    proc = start_registry()
    try:
        yield proc.registry
    finally:
        proc.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `torch` need a real PyTorch and run only in the opt-in `nox -s torch` session.

    They are deselected (not skipped) elsewhere: they are not part of the default suite at all.
    """
    import os

    if os.environ.get("REPRO_BUILD_TORCH_PYTHON"):
        return
    kept = [item for item in items if item.get_closest_marker("torch") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("torch")])
        items[:] = kept


@pytest.fixture
def other_fs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty directory on a file system other than ``tmp_path``'s (a tmpfs or loop mount)."""
    yield from mount_other_fs(tmp_path_factory.mktemp("otherfs") / "mnt")


@pytest.fixture(scope="session")
def built_golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden project in a git repository (its fake base committed too), built once with `image`
    by the CLI in a separate process; the project root. Tests copy what they change."""
    from tests.cli import run_cli
    from tests.foundation.helpers import git_commit
    from tests.image.conftest import GOLDEN_PROJECT
    from tests.image.fakebase import fake_base

    dest = tmp_path_factory.mktemp("built") / "golden"
    shutil.copytree(GOLDEN_PROJECT, dest)
    fake_base(dest / "fakebase")
    (dest / ".gitignore").write_text("build/\ndist/\n")
    git_commit(dest)
    out = run_cli("image", "--project", str(dest), "-q")
    assert out.returncode == 0, out.stderr
    return dest


@pytest.fixture(scope="session", autouse=True)
def _written_manifests_match_the_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every build manifest the session wrote (``build/<target>/manifest.json``, and the rebuilt one of
    ``verify --report``) is valid under the published JSON Schema and round-trips byte for byte."""
    yield
    from tests.manifest.schemacheck import check_manifest_file

    root = tmp_path_factory.getbasetemp()
    for dirpath, _dirs, files in os.walk(root):
        path = Path(dirpath)
        if "manifest.json" in files and path.parent.name == "build":
            check_manifest_file(path / "manifest.json")
        if "manifest.rebuilt.json" in files:
            check_manifest_file(path / "manifest.rebuilt.json")
