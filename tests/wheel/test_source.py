"""The source snapshot (git-tracked files) and its export: no build, no network."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reprobuild.errors import WheelError
from reprobuild.wheel.source import export, snapshot
from reprobuild.wheel.vcs import commit_export
from tests.wheel.fixtures import commit_all, git


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    """A git repo with the project in `proj/` and an unrelated `other/` directory."""
    root = tmp_path / "repo"
    (root / "proj" / "pkg").mkdir(parents=True)
    (root / "other").mkdir()
    (root / "proj" / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '1'\n")
    (root / "proj" / "pkg" / "__init__.py").write_text("")
    (root / "proj" / "run.sh").write_text("#!/bin/sh\n")
    (root / "proj" / "run.sh").chmod(0o755)
    (root / "proj" / "link").symlink_to("pkg/__init__.py")
    (root / "other" / "x.txt").write_text("x")
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    return root


def test_snapshot_of_a_subdirectory_project(monorepo: Path) -> None:
    (monorepo / "other" / "x.txt").write_text("changed outside the project")
    (monorepo / "proj" / "dist").mkdir()
    (monorepo / "proj" / "dist" / "old.whl").write_text("an earlier build, untracked")
    tree = snapshot(monorepo / "proj", allow_dirty=False, outputs=monorepo / "proj" / "dist")
    assert tree.dirty is False  # changes outside the project and the output dir do not count
    assert [(f.path, f.kind, f.executable) for f in tree.files] == [
        ("link", "symlink", False),
        ("pkg/__init__.py", "file", False),
        ("pyproject.toml", "file", False),
        ("run.sh", "file", True),
    ]


def test_dirty_paths_are_named_relative_to_the_project(monorepo: Path) -> None:
    (monorepo / "proj" / "pkg" / "__init__.py").write_text("X = 1\n")
    (monorepo / "proj" / "new.py").write_text("")
    with pytest.raises(WheelError) as exc:
        snapshot(monorepo / "proj", allow_dirty=False)
    assert "  new.py" in exc.value.message and "  pkg/__init__.py" in exc.value.message
    tree = snapshot(monorepo / "proj", allow_dirty=True)
    assert tree.dirty is True
    assert "new.py" in [f.path for f in tree.files]


@pytest.mark.parametrize("reverse", [False, True])
def test_export_sets_modes_and_times_whatever_the_umask(monorepo: Path, tmp_path: Path, reverse: bool) -> None:
    tree = snapshot(monorepo / "proj", allow_dirty=False)
    old = os.umask(0o077)
    try:
        export(tree, tmp_path / "out", epoch_seconds=1234567890, reverse=reverse)
    finally:
        os.umask(old)
    out = tmp_path / "out"
    for path in [out, *out.rglob("*")]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            assert path.readlink() == Path("pkg/__init__.py")
            continue
        expected = 0o755 if path.is_dir() or path.name == "run.sh" else 0o644
        assert stat.S_IMODE(st.st_mode) == expected, path
        assert st.st_mtime == 1234567890, path
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "link",
        "pkg",
        "pkg/__init__.py",
        "pyproject.toml",
        "run.sh",
    ]


def test_outside_git_only_vcs_metadata_and_the_output_directory_are_left_out(tmp_path: Path) -> None:
    """No directory is dropped because of its name (a nested build/, venv/, *.egg-info can be real source);
    what is left out (VCS metadata, repro-build's own top-level build/ and dist/) is named."""
    root = tmp_path / "proj"
    for rel in (
        "pyproject.toml",
        "build/old.whl",
        "tools/build/helper.py",
        "packaging/build/recipe.txt",
        "venv/keep.txt",
        "pkg.egg-info/PKG-INFO",
        "__pycache__/x.txt",
        ".git/HEAD",
        "sub/.hg/store",
        "dist/old.whl",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    tree = snapshot(root, allow_dirty=False, outputs=root / "dist")
    assert tree.vcs is None
    assert [f.path for f in tree.files] == [
        "__pycache__/x.txt",
        "packaging/build/recipe.txt",
        "pkg.egg-info/PKG-INFO",
        "pyproject.toml",
        "tools/build/helper.py",
        "venv/keep.txt",
    ]
    assert tree.left_out == (
        ".git/: version-control metadata",
        "build/: repro-build's own directory (output or cache)",
        "dist/: repro-build's own directory (output or cache)",
        "sub/.hg/: version-control metadata",
    )


def test_the_exports_repository_takes_nothing_from_the_hosts_git_template(
    monorepo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host's template (its ``info/exclude`` rules, hooks) would reach a backend that asks git which files
    belong to the project: the export's repository is made without one, whatever ``GIT_TEMPLATE_DIR`` says."""
    template = tmp_path / "template"
    (template / "info").mkdir(parents=True)
    (template / "info" / "exclude").write_text("*.sh\n")
    (template / "hooks").mkdir()
    (template / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(template))
    tree = snapshot(monorepo / "proj", allow_dirty=False)
    out = tmp_path / "out"
    export(tree, out, epoch_seconds=1234567890)
    commit_export(out, 1234567890)
    assert not {"hooks", "info", "description"} & {p.name for p in (out / ".git").iterdir()}
    assert git(out, "ls-files").split() == ["link", "pkg/__init__.py", "pyproject.toml", "run.sh"]
    assert git(out, "ls-files", "--cached", "--ignored", "--exclude-standard") == "", "no file is ignored"
