"""The CLI contract: data on stdout, `error:` + blank line + `hint:` on stderr, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reprobuild.cli.main import main
from tests.foundation.helpers import write_project


def test_python_dash_m_and_version() -> None:
    out = subprocess.run([sys.executable, "-m", "reprobuild", "--version"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.startswith("repro-build ")


def test_version_is_the_installed_distributions() -> None:
    """The version is written in pyproject.toml and as ``__version__`` in the package: the two, the
    installed distribution and ``--version`` agree."""
    import tomllib
    from importlib.metadata import version

    from reprobuild import __version__
    from reprobuild.distribution import DISTRIBUTION

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == __version__
    assert version(DISTRIBUTION) == __version__
    out = subprocess.run([sys.executable, "-m", "reprobuild", "--version"], capture_output=True, text=True, check=False)
    assert out.stdout == f"repro-build {__version__}\n"


def test_config_prints_effective_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path)
    assert main(["config", "--project", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["targets"]["cpu"]["base"]["text"] == "debian:bookworm"
    assert data["configured"] is False


def test_broken_pyproject_gives_one_error_and_hint_exit_2_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, tool='[tool.repro-build.targets.cpu]\nplatfrom = "linux/amd64"\n')
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["lock", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown key `tool.repro-build.targets.cpu.platfrom`\n\nhint: did you mean")
    assert err.count("error:") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.network
def test_lock_then_check_then_stale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path)
    assert main(["lock", "--project", str(tmp_path)]) == 0
    assert main(["lock", "--check", "--project", str(tmp_path)]) == 0
    assert "locks are current" in capsys.readouterr().out
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"idna==3.10"', '"idna==3.10", "six"'))
    assert main(["lock", "--check", "--project", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "repro-locks/cpu.txt: dependencies: added 'six'" in err
    assert "hint: run `repro-build lock`" in err


@pytest.mark.network
@pytest.mark.parametrize("project", ["examples/hello-ml", "benchmarks/projects/sklearn-service"])
def test_bundled_example_locks_are_current(project: str) -> None:
    """The example and the scale benchmark's fixture build from committed locks that must stay current."""
    assert main(["lock", "--check", "--project", str(Path(__file__).resolve().parents[2] / project)]) == 0
