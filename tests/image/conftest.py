"""Fixtures for the image tests: project copies in temp dirs (git-committed with fixed dates)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.foundation.helpers import git_commit
from tests.image.fakebase import fake_base

HERE = Path(__file__).parent
GOLDEN_PROJECT = HERE / "golden-project"
EXAMPLE = HERE.parents[1] / "examples" / "hello-ml"


def copy_project(src: Path, dest: Path, *, git: bool) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("build", "dist", "__pycache__"))
    (dest / ".gitignore").write_text("build/\ndist/\n")
    if git:
        git_commit(dest)
    return dest


@pytest.fixture
def golden_project(tmp_path: Path) -> Path:
    """The golden fixture project with its deterministic fake base written into ./fakebase."""
    root = copy_project(GOLDEN_PROJECT, tmp_path / "golden", git=False)
    text = fake_base(root / "fakebase")
    assert text.endswith((root / "pyproject.toml").read_text().split("oci-layout:fakebase")[1].split('"')[0]), (
        "the fake base changed: update the digest in tests/image/golden-project/pyproject.toml and re-lock"
    )
    return root
