"""Any PEP 517 project: metadata from the backend (setup.py/setup.cfg-only, poetry), versions from git tags
(setuptools-scm, hatch-vcs), and ``init`` that leaves the backend's behaviour alone."""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from reprobuild.config import Config, load_config
from reprobuild.init import init_project
from reprobuild.lock.check import check_locks
from reprobuild.wheel.build import build_wheel
from reprobuild.wheel.check import check_wheel
from tests.wheel.fixtures import commit_all, git

pytestmark = [pytest.mark.network, pytest.mark.slow]


def _metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as z:
        [name] = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return z.read(name).decode()


def test_setup_cfg_only_project_locks_and_builds(fresh_project: Callable[..., Config], tmp_path: Path) -> None:
    config = fresh_project("setuptools_legacy")
    assert not (config.root / "pyproject.toml").exists()
    assert config.project.from_backend
    assert (config.project.name, config.project.version) == ("legacydemo", "2.1.0")
    assert config.project.requires_python == ">=3.8"
    assert "packaging>=23" in config.project.dependencies
    assert list(config.project.optional_dependencies) == ["fast"]
    assert "packaging==" in (config.locks_dir / "cpu.txt").read_text()
    assert check_locks(config) == []
    record = build_wheel(config, out_dir=tmp_path / "dist")
    assert [a.filename for a in record.artifacts] == ["legacydemo-2.1.0.tar.gz", "legacydemo-2.1.0-py3-none-any.whl"]
    assert record.name == "legacydemo"
    assert "Requires-Dist: packaging>=23" in _metadata(tmp_path / "dist" / record.artifacts[1].filename)


def test_backend_metadata_change_makes_the_lock_stale(fresh_project: Callable[..., Config]) -> None:
    config = fresh_project("setuptools_legacy")
    cfg = config.root / "setup.cfg"
    cfg.write_text(cfg.read_text().replace("packaging>=23", "packaging>=23\n    idna>=3"))
    commit_all(config.root, "add a dependency")
    problems = [str(p) for p in check_locks(load_config(config.root))]
    assert "repro-locks/cpu.txt: dependencies: added 'idna>=3'" in problems


def test_poetry_project_locks_and_builds_reproducibly(fresh_project: Callable[..., Config]) -> None:
    config = fresh_project("poetry_pure")
    assert (config.project.name, config.project.version) == ("poetrydemo", "0.4.0")
    assert "packaging==" in (config.locks_dir / "cpu.txt").read_text()
    result = check_wheel(config)
    assert result.identical, "\n".join(result.report_lines())


def test_init_on_a_setup_cfg_project_adds_no_project_table(
    fresh_project: Callable[..., Config], tmp_path: Path
) -> None:
    config = fresh_project("setuptools_legacy")
    before = build_wheel(config, out_dir=tmp_path / "before").artifacts[1]
    init_project(config.root)
    text = (config.root / "pyproject.toml").read_text()
    assert "[tool.repro-build]" in text
    assert "[project]" not in text and "[build-system]" not in text
    commit_all(config.root, "init")
    after_config = load_config(config.root)
    assert after_config.explicit and after_config.project.name == "legacydemo"
    assert check_locks(after_config) == []  # same backend, same metadata: the locks still hold
    after = build_wheel(after_config, out_dir=tmp_path / "after").artifacts[1]
    # The backend behaved the same: the wheel is byte-identical.
    assert (before.filename, before.sha256) == (after.filename, after.sha256)


@pytest.mark.parametrize(("fixture", "dist"), [("hatch_vcs", "hatch_vcs_demo"), ("setuptools_scm", "scm_demo")])
def test_version_from_the_git_tag(
    fresh_project: Callable[..., Config], tmp_path: Path, fixture: str, dist: str
) -> None:
    config = fresh_project(fixture)
    git(config.root, "tag", "v1.2.3")
    record = build_wheel(config, out_dir=tmp_path / "tagged")
    assert [a.filename for a in record.artifacts] == [f"{dist}-1.2.3.tar.gz", f"{dist}-1.2.3-py3-none-any.whl"]
    assert dict(record.environment)["SETUPTOOLS_SCM_PRETEND_VERSION"] == "1.2.3"
    assert "Version: 1.2.3" in _metadata(tmp_path / "tagged" / record.artifacts[1].filename)
    # One commit after the tag: setuptools-scm's next-dev version with the commit's hash.
    (config.root / "CHANGES.txt").write_text("after the tag\n")
    commit_all(config.root, "after the tag")
    head = git(config.root, "rev-parse", "--short", "HEAD").strip()
    later = build_wheel(load_config(config.root), out_dir=tmp_path / "later")
    assert later.version.startswith("1.2.4.dev1+g") and head[:7] in later.version


def test_versioningit_version_from_the_git_tag(fresh_project: Callable[..., Config], tmp_path: Path) -> None:
    """versioningit takes no version from a variable: the export carries the commit's history and tags,
    so `git describe` (and versioningit) answer as in the checkout."""
    config = fresh_project("versioningit_demo")
    git(config.root, "tag", "v1.2.3")
    record = build_wheel(config, out_dir=tmp_path / "tagged")
    assert [a.filename for a in record.artifacts] == ["vgit_demo-1.2.3.tar.gz", "vgit_demo-1.2.3-py3-none-any.whl"]
    assert "Version: 1.2.3" in _metadata(tmp_path / "tagged" / record.artifacts[1].filename)
    # Two commits after the tag: versioningit's default `{base_version}.post{distance}+{vcs}{rev}`.
    for n in (1, 2):
        (config.root / "CHANGES.txt").write_text(f"change {n}\n")
        commit_all(config.root, f"change {n}")
    head = git(config.root, "rev-parse", "--short=7", "HEAD").strip()
    later = build_wheel(load_config(config.root), out_dir=tmp_path / "later")
    assert later.version == f"1.2.3.post2+g{head}"
    with tarfile.open(tmp_path / "later" / later.artifacts[0].filename) as tar:
        assert not any("/.git/" in n or n.endswith("/.git") for n in tar.getnames())
    assert check_wheel(load_config(config.root)).identical


def test_setuptools_scm_sdist_holds_the_committed_files(fresh_project: Callable[..., Config], tmp_path: Path) -> None:
    """setuptools-scm's file finder asks git: the export's own commit answers it like a checkout would."""
    config = fresh_project("setuptools_scm")
    git(config.root, "tag", "v1.2.3")
    record = build_wheel(config, out_dir=tmp_path / "dist", wheel=False)
    with tarfile.open(tmp_path / "dist" / record.artifacts[0].filename) as tar:
        names = tar.getnames()
    assert "scm_demo-1.2.3/src/scm_demo/notes.txt" in names
    assert not any("/.git/" in n or n.endswith("/.git") for n in names)


def test_scm_project_double_build_is_identical(fresh_project: Callable[..., Config]) -> None:
    config = fresh_project("hatch_vcs")
    git(config.root, "tag", "v2.0.0")
    result = check_wheel(config)
    assert result.identical, "\n".join(result.report_lines())
    assert [c.a.filename for c in result.comparisons] == [
        "hatch_vcs_demo-2.0.0.tar.gz",
        "hatch_vcs_demo-2.0.0-py3-none-any.whl",
    ]
