"""The locks directory (``repro-locks/``) stays out of build backends' package discovery, and projects
that still keep their locks in ``locks/`` are read with a warning and moved by ``repro-build lock``."""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from reprobuild.cli.main import main
from reprobuild.config import Config, load_config
from reprobuild.errors import WheelError
from reprobuild.lockdir import LOCKS_DIR, OLD_LOCKS_DIR, locks_dir, migrate
from reprobuild.wheel.build import build_wheel
from tests.wheel.fixtures import commit_all, git


def _top_level(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return {name.split("/", 1)[0] for name in z.namelist()}


@pytest.mark.network
@pytest.mark.slow
def test_setuptools_flat_layout_builds_after_lock(fresh_project: Callable[..., Config], tmp_path: Path) -> None:
    config = fresh_project("setuptools_flat")
    assert (config.root / LOCKS_DIR / "build.txt").is_file()
    assert not (config.root / OLD_LOCKS_DIR).exists()
    record = build_wheel(config, out_dir=tmp_path / "dist")
    wheel = tmp_path / "dist" / record.artifacts[1].filename
    assert _top_level(wheel) == {"flatdemo", "flatdemo-1.0.0.dist-info"}


@pytest.mark.network
@pytest.mark.slow
def test_old_locks_dir_breaks_flat_layout_until_lock_moves_it(
    fresh_project: Callable[..., Config],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = fresh_project("setuptools_flat").root
    git(root, "mv", LOCKS_DIR, OLD_LOCKS_DIR)  # the layout before: locks/ at the top
    commit_all(root, "the old layout")
    with caplog.at_level(logging.WARNING, logger="reprobuild"):
        config = load_config(root)
        assert config.locks_dir == root / OLD_LOCKS_DIR
        with pytest.raises(WheelError) as e:
            build_wheel(config, out_dir=tmp_path / "old")
    # The reason the directory moved: setuptools takes `locks` for a second package.
    assert "Multiple top-level packages discovered in a flat-layout" in e.value.message
    assert "'locks'" in e.value.message
    assert "run `repro-build lock` once" in caplog.text and "reading the locks from locks/" in caplog.text
    assert not (tmp_path / "old").exists()

    assert main(["lock", "--build-only", "--project", str(root)]) == 0
    err = capsys.readouterr().err
    assert "moved 4 lock file(s) from locks/ to repro-locks/" in err
    assert f"git add -A {OLD_LOCKS_DIR} {LOCKS_DIR}" in err
    assert not (root / OLD_LOCKS_DIR).exists()
    commit_all(root, "move the locks")
    record = build_wheel(load_config(root), out_dir=tmp_path / "new")
    assert _top_level(tmp_path / "new" / record.artifacts[1].filename) == {"flatdemo", "flatdemo-1.0.0.dist-info"}


def _old_locks(root: Path, *extra: str) -> Path:
    old = root / OLD_LOCKS_DIR
    old.mkdir(parents=True)
    (old / "inputs.json").write_text('{"schema": 1, "locks": {"build.txt": {}, "cpu.txt": {}}}\n')
    for name in ("build.txt", "cpu.txt", "base-bookworm-amd64.json", *extra):
        (old / name).write_text(f"{name}\n")
    return old


def test_only_old_dir_is_read_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = _old_locks(tmp_path)
    with caplog.at_level(logging.WARNING, logger="reprobuild"):
        assert locks_dir(tmp_path) == old
        assert locks_dir(tmp_path) == old
    assert caplog.text.count("reading the locks from locks/") == 1
    assert "run `repro-build lock` once" in caplog.text


def test_new_dir_wins_and_leftovers_are_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _old_locks(tmp_path)
    (tmp_path / LOCKS_DIR).mkdir()
    with caplog.at_level(logging.WARNING, logger="reprobuild"):
        assert locks_dir(tmp_path) == tmp_path / LOCKS_DIR
    assert "no longer read" in caplog.text and "git rm -r locks" in caplog.text
    assert migrate(tmp_path).moved == ()  # never merges two directories


def test_a_projects_own_locks_package_is_not_taken_for_locks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "__init__.py").write_text("")
    with caplog.at_level(logging.WARNING, logger="reprobuild"):
        assert locks_dir(tmp_path) == tmp_path / LOCKS_DIR
        assert migrate(tmp_path).moved == ()
    assert caplog.text == ""
    assert (tmp_path / "locks" / "__init__.py").is_file()


def test_migrate_moves_only_repro_builds_files(tmp_path: Path) -> None:
    _old_locks(tmp_path, "notes.md")
    moved = migrate(tmp_path)
    assert moved.moved == ("base-bookworm-amd64.json", "build.txt", "cpu.txt", "inputs.json")
    assert moved.left == ("notes.md",)
    assert sorted(p.name for p in (tmp_path / LOCKS_DIR).iterdir()) == list(moved.moved)
    assert [p.name for p in (tmp_path / OLD_LOCKS_DIR).iterdir()] == ["notes.md"]
    assert "left in locks/ (not repro-build's): notes.md" in moved.messages()[1]
