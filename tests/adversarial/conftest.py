"""The golden project in a git repository, built once, for hostile manifests and caches."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.foundation.helpers import git_commit
from tests.image.conftest import GOLDEN_PROJECT
from tests.image.fakebase import fake_base

CLI = (sys.executable, "-m", "reprobuild")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def built_golden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The golden project (fake base committed too) built with `image`; yields the project root."""
    dest = tmp_path_factory.mktemp("adversarial") / "golden"
    shutil.copytree(GOLDEN_PROJECT, dest)
    fake_base(dest / "fakebase")
    (dest / ".gitignore").write_text("build/\ndist/\n")
    git_commit(dest)
    out = run_cli("image", "--project", str(dest), "-q")
    assert out.returncode == 0, out.stderr
    yield dest
