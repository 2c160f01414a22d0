"""Fixtures shared by the wheel tests: locked fixture repositories and their double builds, built once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from reprobuild.config import Config
from reprobuild.wheel.check import CheckResult, check_wheel
from tests.testbed import Engine, Registry, unavailable
from tests.wheel.fixtures import make_repo


class Projects:
    """Locked git copies of ``tests/packages/*`` and their ``--check`` results, made on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._configs: dict[str, Config] = {}
        self._checks: dict[str, CheckResult] = {}

    def config(self, name: str) -> Config:
        if name not in self._configs:
            self._configs[name] = make_repo(name, self.root / name)
        return self._configs[name]

    def check(self, name: str) -> CheckResult:
        if name not in self._checks:
            self._checks[name] = check_wheel(self.config(name), report_dir=self.root / f"{name}-report")
        return self._checks[name]


@pytest.fixture(scope="session")
def projects(tmp_path_factory: pytest.TempPathFactory) -> Projects:
    return Projects(tmp_path_factory.mktemp("wheel-projects"))


@pytest.fixture
def fresh_project(tmp_path: Path) -> Callable[..., Config]:
    """A new locked copy of a fixture for tests that modify it."""

    def make(name: str, *, lock: bool = True) -> Config:
        return make_repo(name, tmp_path / name, lock=lock)

    return make


#: The builder's packages: a C toolchain and Python headers, nothing else (CI builds it too).
BUILDER_PACKAGES = ("build-essential", "python3", "python3-dev", "python3-venv")


@pytest.fixture(scope="session")
def builder_ref(engine: Engine, registry: Registry) -> str:
    """A Debian bookworm builder image, pinned by digest: ``<loopback registry>/repro-build/builder@sha256:…``.

    The rootfs comes from ``mmdebstrap`` under a fixed ``SOURCE_DATE_EPOCH`` (cached by its inputs in
    ``~/.cache/repro-build-tests/``); ``docker import`` makes it an image (kept in the engine under a
    tag naming the rootfs), and a push to the loopback registry gives it the digest a project pins.
    """
    from tests.oci.rootfs import RootfsUnavailable, debian_rootfs

    try:
        rootfs = debian_rootfs(variant="apt", include=BUILDER_PACKAGES)
    except RootfsUnavailable as e:
        unavailable("the builder rootfs", str(e))
    client: Any = engine.client
    key = rootfs.stem.rsplit("-", 1)[-1]
    local = f"repro-build-test-builder:{key}"
    try:
        image = client.images.get(local)
    except docker.errors.ImageNotFound:
        client.api.import_image_from_file(str(rootfs), repository="repro-build-test-builder", tag=key)
        image = client.images.get(local)
    repo = f"{registry.host}/repro-build/builder"
    image.tag(repo, tag=key)
    for line in client.images.push(repo, tag=key, stream=True, decode=True):
        if "error" in line:
            pytest.fail(f"pushing the builder to the loopback registry failed: {line['error']}")
    image.reload()
    digests = [d for d in image.attrs.get("RepoDigests", []) if d.startswith(repo + "@")]
    assert digests, f"the engine recorded no digest for {repo} after the push"
    return str(digests[0])
