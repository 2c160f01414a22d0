"""Build requirements the backend adds at build time are locked with hashes, and their change is noticed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reprobuild.config import Config, load_config
from reprobuild.lock.check import check_build_lock, check_locks
from reprobuild.lock.inputs import read_inputs_file
from reprobuild.wheel.build import build_wheel
from tests.wheel.fixtures import commit_all

pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_backend_build_requires_are_locked_and_checked(fresh_project: Callable[..., Config], tmp_path: Path) -> None:
    config = fresh_project("intree_backend")
    lock = (config.locks_dir / "build.txt").read_text()
    assert "\nsix==" in lock and "--hash=sha256:" in lock.split("\nsix==", 1)[1].split("\n", 2)[1]
    assert "and six from the backend" in lock
    inputs = read_inputs_file(config)
    assert inputs is not None and inputs["locks"]["build.txt"]["inputs"]["backend-build-requires"] == ["six"]
    assert check_locks(config) == []
    # The backend imports six while building the wheel: it was installed, pinned by hash.
    record = build_wheel(config, out_dir=tmp_path / "dist")
    assert [a.filename for a in record.artifacts][-1] == "intree_demo-1.0.0-py3-none-any.whl"

    (config.root / "build-requires.txt").write_text("six\nidna\n")
    commit_all(config.root, "the backend needs idna too")
    changed = load_config(config.root)
    assert [str(p) for p in check_locks(changed)] == ["repro-locks/build.txt: backend-build-requires: added 'idna'"]
    check_build_lock(changed)  # the quick check before a build trusts the recorded answer
