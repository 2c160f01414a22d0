"""The GPU check's two scripts, run on this machine (no GPU): what ``prepare.py`` writes is what an image gets,
and ``check.py`` refuses, with exit 2, to call a machine without a usable torch GPU a pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reprobuild.config import load_config
from reprobuild.determinism.policy import image_files

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "hello-ml"


def test_prepare_writes_the_image_files_and_env(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(HERE / "prepare.py"), str(tmp_path)], check=True, capture_output=True)
    config = load_config(EXAMPLE)
    policy = config.target("cuda").policy
    for name, data in image_files(policy):
        assert (tmp_path / "site" / name).read_bytes() == data
    env = json.loads((tmp_path / "env.json").read_text())
    assert env == policy.image_env
    assert env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_prepare_refuses_a_cpu_target(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(HERE / "prepare.py"), str(tmp_path), "--target", "cpu"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "not a cuda target" in done.stderr


def test_check_without_a_gpu_exits_2(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(HERE / "prepare.py"), str(tmp_path)], check=True, capture_output=True)
    done = subprocess.run(
        [sys.executable, str(HERE / "check.py"), str(tmp_path)], check=False, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "torch does not run here" in done.stderr or "no GPU" in done.stderr
