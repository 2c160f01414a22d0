"""Which builder image `--in-container` uses, from the configuration alone (no engine needed)."""

from __future__ import annotations

from pathlib import Path

from reprobuild.config import load_config
from reprobuild.wheel.container import builder_configured, builder_reference

DIGEST = "sha256:" + "ab" * 32
PYPROJECT = '[project]\nname = "p"\nversion = "1"\n\n[tool.repro-build]\n'


def _project(tmp_path: Path, tool: str = "", dockerfile: str | None = None) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT + tool)
    if dockerfile is not None:
        (tmp_path / "Dockerfile.base").write_text(dockerfile)
    return tmp_path


def test_no_builder_means_host(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path))
    assert builder_reference(config) is None
    assert not builder_configured(config)


def test_builder_stage_in_dockerfile_base_is_the_default(tmp_path: Path) -> None:
    dockerfile = f"FROM example.invalid/base@{DIGEST} AS cpu\nFROM example.invalid/manylinux@{DIGEST} AS builder\n"
    config = load_config(_project(tmp_path, dockerfile=dockerfile))
    assert builder_reference(config) == f"example.invalid/manylinux@{DIGEST}"


def test_builder_by_digest_in_the_config(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path, tool=f'builder = "example.invalid/b@{DIGEST}"\n'))
    assert builder_reference(config) == f"example.invalid/b@{DIGEST}"


def test_builder_naming_a_stage(tmp_path: Path) -> None:
    dockerfile = f"FROM example.invalid/tools@{DIGEST} AS toolchain\n"
    config = load_config(_project(tmp_path, tool='builder = "toolchain"\n', dockerfile=dockerfile))
    assert builder_reference(config) == f"example.invalid/tools@{DIGEST}"
