"""`--in-container`: builds inside a builder image pinned by digest, with no network."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from reprobuild.config import Config, load_config
from reprobuild.errors import EngineError
from reprobuild.wheel.build import build_wheel
from reprobuild.wheel.check import CheckResult, check_wheel
from tests.wheel.fixtures import commit_all, make_repo

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.network, pytest.mark.slow]


def with_builder(config: Config, ref: str) -> Config:
    """Name ``ref`` as the project's builder (and the builder's Python) and commit it."""
    pyproject = config.root / "pyproject.toml"
    text = pyproject.read_text()
    assert "[tool.repro-build]\n" in text
    # The builder (Debian bookworm) has Python 3.11, whatever Python runs the tests.
    pyproject.write_text(
        text.replace("[tool.repro-build]\n", f'[tool.repro-build]\nbuilder = "{ref}"\npython = "3.11"\n', 1)
    )
    commit_all(config.root, "use the builder image")
    return load_config(config.root)


#: One project per backend (the PEP 517 default is setuptools again).
CONTAINER_FIXTURES = ["setuptools_cext", "hatch_pure", "setuptools_pure", "flit_pure"]


class ContainerProjects:
    """Fixture projects configured with the builder, and their in-container double builds."""

    def __init__(self, root: Path, ref: str) -> None:
        self.root, self.ref = root, ref
        self.checks: dict[str, CheckResult] = {}

    def check(self, name: str) -> CheckResult:
        if name not in self.checks:
            config = with_builder(make_repo(name, self.root / name), self.ref)
            self.checks[name] = check_wheel(config)  # the container is the default once a builder is named
        return self.checks[name]


@pytest.fixture(scope="module")
def in_container(builder_ref: str, tmp_path_factory: pytest.TempPathFactory) -> ContainerProjects:
    return ContainerProjects(tmp_path_factory.mktemp("container-projects"), builder_ref)


@pytest.mark.parametrize("name", CONTAINER_FIXTURES)
def test_container_double_build_is_identical(in_container: ContainerProjects, name: str) -> None:
    """Two builds in the builder, from two host build paths, under varied host umask/TZ/locale/file order."""
    result = in_container.check(name)
    assert [c.kind for c in result.comparisons] == ["sdist", "wheel"]
    assert result.identical, "\n".join(result.report_lines())


def test_container_build_records_the_builder(in_container: ContainerProjects, tmp_path: Path) -> None:
    """A build of another copy of the project, elsewhere on the host, gives the double build's bytes."""
    check = in_container.check("setuptools_cext")
    config = with_builder(
        make_repo("setuptools_cext", tmp_path / "a-much-longer-parent-directory" / "cext"), in_container.ref
    )
    record = build_wheel(config)
    assert record.artifacts == tuple(c.a for c in check.comparisons)
    digest = in_container.ref.split("@", 1)[1]
    assert record.builder is not None and record.builder.digest == digest
    assert record.to_dict()["builder"] == {"image": in_container.ref, "digest": digest}
    with zipfile.ZipFile(config.root / "dist" / record.artifacts[1].filename) as z:
        [so] = [n for n in z.namelist() if n.endswith(".so")]
        binary = z.read(so)
        assert z.namelist()[-1].endswith(".dist-info/RECORD")
    assert b"/usr/include/python3.11" in binary  # compiled against the builder's headers, with -g
    if sys.base_prefix != "/usr":
        assert sys.base_prefix.encode() not in binary  # … not the host's
    assert b"./work/cext-1.0.0" in binary  # the fixed build root /build is mapped to `.`
    # On the host the sdist is the same bytes (pure Python work); the wheel uses the host toolchain.
    host = build_wheel(config, in_container=False, out_dir=tmp_path / "host")
    assert host.builder is None
    assert host.artifacts[0] == record.artifacts[0]


def test_unknown_builder_digest_is_an_engine_error(builder_ref: str, fresh_project: Callable[..., Config]) -> None:
    repo = builder_ref.split("@", 1)[0]
    config = with_builder(fresh_project("hatch_pure"), f"{repo}@sha256:{'0' * 64}")
    with pytest.raises(EngineError, match="cannot be pulled") as exc:
        build_wheel(config)
    assert exc.value.hint is not None and "docker pull" in exc.value.hint
    assert not (config.root / "dist").exists()
