"""The in-image hook and doctor, exercised in a real virtual environment with the files an image gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reprobuild.determinism.flagsets import FLAG_SETS, merge_xla_flags
from reprobuild.determinism.policy import PTH_NAME, Policy, Switches, effective_env, image_files
from reprobuild.uvbin import find_uv

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

    _threads = [8]
    _seed = [12345]

    def set_num_threads(n):
        calls.append(("set_num_threads", n))
        _threads[0] = n

    def get_num_threads():
        return _threads[0]

    def manual_seed(n):
        calls.append(("manual_seed", n))
        _seed[0] = n

    def initial_seed():
        return _seed[0]

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
        "_repro_build_determinism_facts.py",
        "_repro_build_determinism_selftest.py",
    ]
    assert PTH_NAME in [name for name, _ in image_files(Policy(("python",), seed=0))]
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
    from reprobuild.cli.main import main
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


FAKE_NUMPY_RANDOM = "calls = []\n\ndef seed(n):\n    calls.append(n)\n"


def test_seed_reaches_random_numpy_and_torch_at_first_import(tmp_path: Path) -> None:
    python = make_env(tmp_path, Policy(("python",), seed=7))
    site = next(python.parent.parent.glob("lib/python3.*/site-packages"))
    (site / "numpy" / "random").mkdir(parents=True)
    (site / "numpy" / "__init__.py").write_text("")
    (site / "numpy" / "random" / "__init__.py").write_text(FAKE_NUMPY_RANDOM)
    code = (
        "import random, numpy.random, torch; "
        "print(random.random() == __import__('random').Random(7).random(), numpy.random.calls, torch.calls)"
    )
    out = run(python, code)
    assert out.returncode == 0, out.stderr
    # A seed alone does not turn on torch's switches (no `torch` set): only manual_seed is called.
    assert out.stdout.strip() == "True [7] [('manual_seed', 7)]"
    again = run(python, "import random; print(random.random())")
    assert again.stdout == run(python, "import random; print(random.random())").stdout
    overridden = run(python, code, {"REPRO_BUILD_SEED": "8"})
    assert overridden.stdout.strip() == "False [8] [('manual_seed', 8)]"
    off = run(python, code, {"REPRO_BUILD_SEED": "off"})
    assert off.stdout.strip() == "False [] []"
    bad = run(python, "import random", {"REPRO_BUILD_SEED": "banana"})
    assert bad.returncode == 0 and "nothing is seeded" in bad.stderr


def test_unseeded_image_draws_differently(tmp_path: Path) -> None:
    python = make_env(tmp_path, Policy(("python",)))
    draws = {run(python, "import random; print(random.random())").stdout for _ in range(3)}
    assert len(draws) == 3


def test_switches_and_threads_follow_the_config(tmp_path: Path) -> None:
    switches = Switches(deterministic_algorithms=False, cudnn_benchmark=True, warn_only=True)
    policy = Policy(("python", "torch"), switches=switches)
    python = make_env(tmp_path, policy)
    out = run(
        python,
        "import torch; print(torch.calls, torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)",
        {"OMP_NUM_THREADS": "3"},
    )
    assert out.stdout.strip() == "[('use_deterministic_algorithms', False, True), ('set_num_threads', 3)] False True"
    doctor = subprocess.run(
        [str(python), "-m", "_repro_build_determinism_doctor", "--json"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **policy.env},
        check=False,
    )
    assert doctor.returncode == 0, doctor.stdout
    report = json.loads(doctor.stdout)
    assert report["frameworks"]["torch"]["threads"] == 1 and report["switches"]["cudnn_benchmark"] is True


def test_overrides_and_removals_make_the_policy_env() -> None:
    user_env, unset = effective_env(
        [
            ({"OMP_NUM_THREADS": "4", "XLA_FLAGS": "--xla_dump_to=/tmp/x"}, ["MKL_DYNAMIC"]),
            ({"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "MKL_CBWR": "", "MKL_DYNAMIC": "FALSE"}, ["OMP_DYNAMIC"]),
        ]
    )
    assert unset == ("OMP_DYNAMIC",)
    policy = Policy(("python", "mkl", "jax"), user_env=user_env, unset=unset)
    env = policy.env
    assert env["OMP_NUM_THREADS"] == "2" and env["MKL_NUM_THREADS"] == "2" and env["MKL_CBWR"] == ""
    assert env["MKL_DYNAMIC"] == "FALSE" and "OMP_DYNAMIC" not in env
    assert env["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=true --xla_dump_to=/tmp/x"
    assert policy.overrides == {
        "MKL_CBWR": "",
        "MKL_NUM_THREADS": "2",
        "OMP_DYNAMIC": None,
        "OMP_NUM_THREADS": "2",
        "XLA_FLAGS": "--xla_gpu_deterministic_ops=true --xla_dump_to=/tmp/x",
    }
    assert merge_xla_flags("--a=1 --b=2", "--b=3 --c") == "--a=1 --b=3 --c"


def test_doctor_accepts_an_image_env_with_overrides(tmp_path: Path) -> None:
    user_env, unset = effective_env([({"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "MKL_CBWR": ""}, [])])
    policy = Policy(("python", "mkl"), user_env=user_env, unset=unset)
    python = make_env(tmp_path, policy, fake_torch=None)
    env = {"PATH": os.environ["PATH"], **policy.image_env}
    ok = subprocess.run(
        [str(python), "-m", "_repro_build_determinism_doctor"], capture_output=True, text=True, env=env, check=False
    )
    assert ok.returncode == 0, ok.stdout
    assert "ok      env MKL_CBWR= (want , overridden by the config)" in ok.stdout
    # A policy written from the flag sets alone (as before overrides were recorded): the doctor objects.
    (tmp_path / "stale.json").write_text(json.dumps(Policy(("python", "mkl")).to_dict()))
    bad = subprocess.run(
        [str(python), "-m", "_repro_build_determinism_doctor", "--policy", str(tmp_path / "stale.json")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 1 and "WRONG   env MKL_CBWR=" in bad.stdout


def test_selftest_names_the_op_that_differs() -> None:
    from reprobuild.determinism import selftest

    counter = iter(range(100))
    result = selftest.run([("stable", lambda: b"x"), ("flaky", lambda: bytes([next(counter)]))])
    assert result == {"ok": False, "ops": {"stable": "same", "flaky": "DIFFERENT"}, "failed": ["flaky"]}

    def boom() -> bytes:
        raise RuntimeError("no deterministic kernel")

    assert selftest.run([("boom", boom)])["ops"]["boom"] == "error: RuntimeError: no deterministic kernel"


def test_doctor_reports_facts_and_selftest_exit_code(tmp_path: Path) -> None:
    python = make_env(tmp_path, Policy(("python",)), fake_torch=None)
    out = subprocess.run(
        [str(python), "-m", "_repro_build_determinism_doctor", "--selftest"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"},
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "info    threads: OMP_NUM_THREADS=1" in out.stdout and "info    gpu: none visible" in out.stdout
    assert "skip    self-test: no numpy or torch installed" in out.stdout


@pytest.mark.torch
def test_real_torch_seed_doctor_and_selftest(tmp_path: Path) -> None:
    """Opt-in (`nox -s torch`): `seed = 0` gives the same torch.randn in two processes; the doctor and its
    self-test pass with the real PyTorch CPU build."""
    torch_python = os.environ["REPRO_BUILD_TORCH_PYTHON"]
    site = subprocess.run(
        [torch_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    policy = Policy(("python", "torch", "mkl"), seed=0)
    for name, data in image_files(policy):
        (Path(site) / name).write_bytes(data)
    env = {**policy.image_env}
    try:
        code = "import torch; print(torch.randn(4).tolist(), torch.get_num_threads())"
        first, second = run(Path(torch_python), code, env), run(Path(torch_python), code, env)
        assert first.returncode == 0, first.stderr
        assert first.stdout == second.stdout and first.stdout.strip().endswith(" 1")
        assert run(Path(torch_python), code, {**env, "REPRO_BUILD_SEED": "1"}).stdout != first.stdout
        doctor = subprocess.run(
            [torch_python, "-m", "_repro_build_determinism_doctor", "--selftest"],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"], **env},
            check=False,
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "ok      seed 0 (policy 0): random ok, numpy.random ok, torch ok" in doctor.stdout
        for op in ("matmul", "conv2d", "index_add_", "scatter_add_"):
            assert f"ok      self-test torch.{op}[cpu]: same" in doctor.stdout
        # Without numpy (a torch image need not have it) the torch self-test still runs.
        no_numpy = run(
            Path(torch_python),
            "import sys; sys.modules['numpy'] = None; import _repro_build_determinism_selftest as t; "
            "r = t.run(t.torch_ops('cpu')); print(r['ok'], r['ops'])",
            env,
        )
        assert no_numpy.stdout.startswith("True "), no_numpy.stdout + no_numpy.stderr
    finally:
        for name, _ in image_files(policy):
            (Path(site) / name).unlink()


def test_hook_applies_in_a_virtualenv_made_environment(tmp_path: Path) -> None:
    """virtualenv 20's ``_virtualenv.pth`` puts a finder class named ``_Finder`` on ``sys.meta_path`` first.

    The hook used to recognise itself by that class name, took virtualenv's finder for its own and installed
    nothing: on a GPU machine whose torch lived in such an environment, ``index_add_`` on CUDA varied run to run.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "virtualenv", "-q", "--no-periodic-update", str(venv)], check=True)
    site = next(venv.glob("lib/python3.*/site-packages"))
    assert (site / "_virtualenv.pth").is_file(), "virtualenv no longer writes its .pth: this test tests nothing"
    for name, data in image_files(Policy(("python", "torch"))):
        (site / name).write_bytes(data)
    (site / "torch").mkdir()
    (site / "torch" / "__init__.py").write_text(FAKE_TORCH)
    python = venv / "bin" / "python"
    code = "import sys, torch; print([type(f).__name__ for f in sys.meta_path].count('_Finder'), torch.calls)"
    out = run(python, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1 [('use_deterministic_algorithms', True, False)]"
    doctor = run(python, "import _repro_build_determinism_doctor as d; raise SystemExit(d.main(['--json']))")
    assert json.loads(doctor.stdout)["frameworks"]["torch"]["use_deterministic_algorithms"] is True
