"""The in-image hook and doctor, exercised in a real virtual environment with the files an image gets."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from repro_build.determinism.flagsets import FLAG_SETS
from repro_build.determinism.policy import PTH_NAME, Policy, image_files
from repro_build.uvbin import find_uv

# A stand-in for torch with the same API surface the hook and doctor touch, recording every call.
FAKE_TORCH = textwrap.dedent(
    """
    import types
    __version__ = "0.0-fake"
    calls = []
    _det = False

    def use_deterministic_algorithms(mode, *, warn_only=False):
        global _det
        calls.append(("use_deterministic_algorithms", mode, warn_only))
        _det = mode

    def are_deterministic_algorithms_enabled():
        return _det

    backends = types.SimpleNamespace(cudnn=types.SimpleNamespace(deterministic=False, benchmark=True))
    """
)


def make_env(tmp_path: Path, policy: Policy, *, fake_torch: str | None = FAKE_TORCH) -> Path:
    """A venv whose site-packages holds the image files (and a fake torch); returns its python."""
    venv = tmp_path / "venv"
    subprocess.run([find_uv(), "venv", "-q", "--python", "3.11", str(venv)], check=True)
    site = next(venv.glob("lib/python3.*/site-packages"))
    for name, data in image_files(policy):
        (site / name).write_bytes(data)
    if fake_torch is not None:
        (site / "torch").mkdir()
        (site / "torch" / "__init__.py").write_text(fake_torch)
    return venv / "bin" / "python"


def run(python: Path, code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], **(env or {})}
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=full, check=False)


def test_image_files_without_runtime_frameworks_have_no_pth() -> None:
    names = [name for name, _ in image_files(Policy(("python", "mkl")))]
    assert names == [
        "_repro_build_determinism.json",
        "_repro_build_determinism.py",
        "_repro_build_determinism_doctor.py",
    ]
    names = [name for name, _ in image_files(Policy(("python", "torch")))]
    assert PTH_NAME in names


def test_policy_env_includes_sets_and_cuda() -> None:
    env = Policy(("python", "torch"), cuda=True).env
    assert env["PYTHONHASHSEED"] == "0"
    assert env["CUBLAS_WORKSPACE_CONFIG"] == FLAG_SETS["torch"]["CUBLAS_WORKSPACE_CONFIG"]
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"


def test_hook_turns_torch_switches_on_at_first_import(tmp_path: Path) -> None:
    python = make_env(tmp_path, Policy(("python", "torch")))
    out = run(
        python,
        "import sys; assert 'torch' not in sys.modules; import torch; "
        "print(torch.calls, torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[('use_deterministic_algorithms', True, False)] True False"


def test_warn_mode_and_disable_switch(tmp_path: Path) -> None:
    python = make_env(tmp_path, Policy(("torch",)))
    warn = run(python, "import torch; print(torch.calls)", {"REPRO_BUILD_DETERMINISM": "warn"})
    assert warn.stdout.strip() == "[('use_deterministic_algorithms', True, True)]"
    off = run(
        python, "import torch; print(torch.calls, torch.backends.cudnn.benchmark)", {"REPRO_BUILD_DETERMINISM": "0"}
    )
    assert off.stdout.strip() == "[] True"


def test_hook_is_inert_for_other_imports_and_without_pth(tmp_path: Path) -> None:
    python = make_env(tmp_path, Policy(("python",)))
    out = run(python, "import json, sys; import torch; print(torch.calls, '_repro_build_determinism' in sys.modules)")
    assert out.stdout.strip() == "[] False"


def test_a_framework_the_hook_cannot_configure_still_imports(tmp_path: Path) -> None:
    python = make_env(tmp_path, Policy(("torch",)), fake_torch="__version__ = 'broken'\n")
    out = run(python, "import torch; print(torch.__version__)")
    assert out.returncode == 0 and out.stdout.strip() == "broken"
    assert "could not configure torch" in out.stderr


def test_doctor_in_the_image_env(tmp_path: Path) -> None:
    policy = Policy(("python", "torch"))
    python = make_env(tmp_path, policy)
    good = subprocess.run(
        [str(python), "-m", "_repro_build_determinism_doctor", "--json"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **policy.env},
        check=False,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    report = json.loads(good.stdout)
    assert report["ok"] and report["frameworks"]["torch"]["use_deterministic_algorithms"] is True
    bad = subprocess.run(
        [str(python), "-m", "_repro_build_determinism_doctor"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONHASHSEED": "0"},
        check=False,
    )
    assert bad.returncode == 1
    assert "MISSING env CUBLAS_WORKSPACE_CONFIG" in bad.stdout
    assert "policy NOT met" in bad.stdout
    disabled = subprocess.run(
        [str(python), "-m", "_repro_build_determinism_doctor"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **policy.env, "REPRO_BUILD_DETERMINISM": "off"},
        check=False,
    )
    assert disabled.returncode == 1 and "disabled" in disabled.stdout


def test_host_doctor_cli_reports_missing_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from repro_build.cli.main import main
    from tests.foundation.helpers import write_project

    write_project(tmp_path, tool='[tool.repro-build.targets.cpu]\nflags = ["python", "mkl"]\n')
    monkeypatch.delenv("MKL_CBWR", raising=False)
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    assert main(["doctor", "--project", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "ok      env PYTHONHASHSEED=0" in out and "MISSING env MKL_CBWR" in out
    for key, value in Policy(("python", "mkl")).env.items():
        monkeypatch.setenv(key, value)
    assert main(["doctor", "--project", str(tmp_path)]) == 0


@pytest.mark.torch
def test_real_torch_switches(tmp_path: Path) -> None:
    """Opt-in (`nox -s torch`): the real PyTorch CPU build, imported through the hook."""
    torch_python = os.environ["REPRO_BUILD_TORCH_PYTHON"]  # tests/conftest.py deselects this test without it
    site = subprocess.run(
        [torch_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    policy = Policy(("python", "torch"))
    for name, data in image_files(policy):
        (Path(site) / name).write_bytes(data)
    try:
        out = run(
            Path(torch_python),
            "import torch; print(torch.are_deterministic_algorithms_enabled(), "
            "torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)",
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "True True False"
        # Deterministic mode really is on: an op without a deterministic implementation would raise;
        # index_add_ on CPU is deterministic, so it must work.
        ok = run(
            Path(torch_python),
            "import torch; x = torch.zeros(3); x.index_add_(0, torch.tensor([0, 0]), torch.ones(2)); print(x.tolist())",
        )
        assert ok.stdout.strip() == "[2.0, 0.0, 0.0]"
    finally:
        for name, _ in image_files(policy):
            (Path(site) / name).unlink()
