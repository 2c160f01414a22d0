from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.epoch import ZIP_EPOCH_FLOOR, Epoch, resolve_epoch
from reprobuild.errors import ConfigError
from tests.foundation.helpers import git_commit, write_project


def test_env_wins_over_config_and_git(tmp_path: Path) -> None:
    e = resolve_epoch("git", tmp_path, {"SOURCE_DATE_EPOCH": "1234"})
    assert e == Epoch(1234, "env")


def test_integer_policy(tmp_path: Path) -> None:
    assert resolve_epoch(42, tmp_path, {}) == Epoch(42, "config")


def test_git_policy_reads_head_commit_time(tmp_path: Path) -> None:
    write_project(tmp_path)
    git_commit(tmp_path, when=1600000000)
    assert resolve_epoch("git", tmp_path, {}) == Epoch(1600000000, "git")


def test_git_policy_outside_a_repository_explains(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_epoch("git", tmp_path, {})
    assert "not a git repository" in err.value.message
    assert err.value.hint and "source-date-epoch" in err.value.hint


@pytest.mark.parametrize("bad", ["-1", "1.5", "abc", "12e3", "١٢"])
def test_malformed_env_epoch(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH"):
        resolve_epoch(0, tmp_path, {"SOURCE_DATE_EPOCH": bad})


def test_zip_floor_and_clamp() -> None:
    assert Epoch(0, "config").zip_seconds == ZIP_EPOCH_FLOOR
    assert Epoch(2000000000, "config").zip_seconds == 2000000000
    assert Epoch(100, "config").clamp(50.7) == 50
    assert Epoch(100, "config").clamp(500) == 100
