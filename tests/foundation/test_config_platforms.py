"""`platforms = [...]` in the configuration: expanded into one-platform targets with their own locks; each
mistake is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.cli.main import main
from reprobuild.config import load_config

CONFIG = """\
[project]
name = "p"
version = "1"
requires-python = ">=3.11"

[tool.repro-build.targets.cpu]
{body}
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'platform = "linux/amd64"\nplatforms = ["linux/arm64"]',
            "`tool.repro-build.targets.cpu` sets both `platform` and `platforms`",
        ),
        (
            'platforms = ["linux/amd64", "linux/arm64", "linux/amd64"]',
            "`tool.repro-build.targets.cpu.platforms[2]`: 'linux/amd64' is listed twice",
        ),
        (
            'platforms = ["linux/amd64", "linux/riscv64"]',
            "`tool.repro-build.targets.cpu.platforms[1]` must be `linux/amd64` or `linux/arm64`, got 'linux/riscv64'",
        ),
        ("platforms = []", "`tool.repro-build.targets.cpu.platforms` is empty"),
        ('platforms = "linux/amd64"', "`tool.repro-build.targets.cpu.platforms` must be an array of strings"),
    ],
    ids=["both", "duplicate", "unknown", "empty", "not-a-list"],
)
def test_config_mistakes_are_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, message: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(CONFIG.format(body=body))
    assert main(["config", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}"), err
    assert "hint: " in err and "Traceback" not in err


def test_platforms_expand_into_per_platform_targets(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(CONFIG.format(body='platforms = ["linux/arm64", "linux/amd64"]'))
    config = load_config(tmp_path)
    target = config.target("cpu")
    assert target.platforms == ("arm64", "amd64")  # the configured order is the index's
    assert [(t.lock_name, t.python_platform) for t in config.lock_targets()] == [
        ("cpu.arm64.txt", "aarch64-manylinux_2_28"),
        ("cpu.amd64.txt", "x86_64-manylinux_2_28"),
    ]
    assert config.to_dict()["targets"]["cpu"]["platforms"] == ["linux/arm64", "linux/amd64"]


def test_dockerfile_refuses_a_multi_platform_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(CONFIG.format(body='platforms = ["linux/amd64", "linux/arm64"]'))
    assert main(["dockerfile", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error: target 'cpu' is built for several platforms" in err and "hint: " in err


def test_load_without_this_machines_platform_is_refused_before_building(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reprobuild.platforms import host_arch

    other = "arm64" if host_arch() == "amd64" else "amd64"
    (tmp_path / "pyproject.toml").write_text(CONFIG.format(body=f'platforms = ["linux/{other}"]'))
    assert main(["image", "--project", str(tmp_path), "--load", "--no-project"]) == 2
    err = capsys.readouterr().err
    assert f"error: --load: target 'cpu' has no image for this machine's platform (linux/{host_arch()})" in err
    assert "hint: " in err
    assert not (tmp_path / "build").exists()  # nothing was built


@pytest.mark.parametrize(
    ("filename", "arch", "problem"),
    [
        ("app-1-py3-none-any.whl", "arm64", False),
        ("app-1-cp311-cp311-manylinux_2_28_aarch64.whl", "arm64", False),
        ("app-1-cp311-cp311-manylinux_2_28_x86_64.whl", "arm64", True),
        ("app-1-cp311-cp311-manylinux_2_28_x86_64.whl", "amd64", False),
    ],
)
def test_a_project_wheel_for_another_machine_is_named(tmp_path: Path, filename: str, arch: str, problem: bool) -> None:
    from reprobuild.image.multiplatform import project_wheel_problem

    (tmp_path / "pyproject.toml").write_text(CONFIG.format(body='platforms = ["linux/amd64", "linux/arm64"]'))
    target = load_config(tmp_path).target("cpu").for_arch(arch)
    # Both records the manifest knows: a given file, and the wheel step's artifacts.
    for record in ({"filename": filename}, {"artifacts": [{"kind": "wheel", "filename": filename}]}):
        found = project_wheel_problem(record, target)
        assert (found == f"the project wheel {filename} is not for linux/{arch}") if problem else found is None
