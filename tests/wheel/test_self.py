"""repro-build's own wheel and sdist are reproducible (the committed HEAD, exported with `git archive`)."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from reprobuild.config import load_config
from reprobuild.distribution import DISTRIBUTION
from reprobuild.errors import StaleLockError
from reprobuild.lock import check_build_lock
from reprobuild.lock.compile import lock_project
from reprobuild.wheel.check import check_wheel
from tests.wheel.fixtures import commit_all, git

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_repro_build_itself_is_reproducible(tmp_path: Path) -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not running from a git checkout of repro-build")
    archive = tmp_path / "head.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(archive), "HEAD"], check=True)
    root = tmp_path / "repro-build"
    root.mkdir()
    with tarfile.open(archive) as t:
        t.extractall(root, filter="data")
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "HEAD of repro-build")
    config = load_config(root)
    try:
        check_build_lock(config)
    except StaleLockError:
        # HEAD's locks may predate this machine's uv; re-lock the copy, never the checkout.
        lock_project(config)
        commit_all(root, "lock")
        config = load_config(root)
    result = check_wheel(config)
    assert result.identical, "\n".join(result.report_lines())
    assert [c.a.filename.startswith(f"{DISTRIBUTION}-") for c in result.comparisons] == [True, True]
