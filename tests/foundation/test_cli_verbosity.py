"""A mistyped command gets a did-you-mean; `-v` adds debug lines on stderr, `-q` removes the logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from reprobuild.cli.main import COMMANDS, main
from reprobuild.cli.verbosity import unknown_command
from tests.foundation.helpers import git_commit, write_project


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [(["imgae"], "image"), (["-q", "verfiy", "x"], "verify"), (["lcok", "--check"], "lock"), (["inspetc"], "inspect")],
)
def test_did_you_mean(argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: unknown command {argv[-1] if len(argv) == 1 else next(a for a in argv if a[0] != '-')!r}" in err
    assert f"did you mean `repro-build {suggestion}`?" in err


def test_nothing_close_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in err and ", ".join(COMMANDS) in err


def test_known_commands_and_help_pass_through() -> None:
    for name in COMMANDS:
        assert unknown_command([name], COMMANDS) is None
        assert unknown_command(["-v", "-q", name, "typo-as-argument"], COMMANDS) is None
    assert unknown_command(["--version"], COMMANDS) is None
    assert unknown_command([], COMMANDS) is None


@pytest.mark.network
def test_verbose_logs_external_commands_quiet_silences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_project(tmp_path / "p", tool='[tool.repro-build.targets.cpu]\nbase = "debian:bookworm"\n')
    (root / "src" / "demo").mkdir(parents=True)
    (root / "src" / "demo" / "__init__.py").write_text("")
    # Each uv command `lock` runs is a debug line, with what it was for and its exit status.
    assert main(["lock", "--project", str(root), "-v", "--target", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "debug: resolving target 'cpu': `uv pip compile" in err and "exited 0 in" in err
    assert "locked repro-locks/cpu.txt" in err
    git_commit(root)
    # ... and each git command of the source snapshot.
    assert main(["wheel", "--project", str(root), "-v", "--no-container", "--out-dir", str(tmp_path / "d1")]) == 0
    assert "debug: `git -C" in capsys.readouterr().err
    assert main(["-q", "lock", "--project", str(root), "-v", "--target", "cpu"]) == 0
    assert capsys.readouterr().err == ""  # -q wins
    assert main(["lock", "--project", str(root), "--target", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "debug:" not in err and "locked repro-locks/cpu.txt" in err
    assert logging.getLogger("reprobuild").level == logging.WARNING
