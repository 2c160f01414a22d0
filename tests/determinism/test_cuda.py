"""CUDA facts from locked nvidia-* wheels and a CUDA base's env."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.config import load_config
from reprobuild.determinism.cuda import cuda_facts
from reprobuild.determinism.cudapolicy import with_cuda
from reprobuild.determinism.policy import Policy
from reprobuild.image.wheels import WheelPin
from reprobuild.lock.cuda import lock_warnings
from tests.foundation.helpers import write_project

CU12 = [
    ("nvidia-cuda-runtime-cu12", "12.9.79"),
    ("nvidia-cublas-cu12", "12.9.1.4"),
    ("nvidia_cudnn_cu12", "9.10.2.21"),
    ("nvidia-nccl-cu12", "2.27.3"),
    ("numpy", "2.3.5"),
]


def test_versions_and_requirement_from_the_wheels() -> None:
    facts = cuda_facts(CU12, ["PATH=/usr/bin"])
    assert facts is not None
    assert facts.to_dict() == {
        "base_cuda_version": None,
        "cuda_majors": [12],
        "require": "cuda>=12.9",
        "cuda_runtime": "12.9.79",
        "cublas": "12.9.1.4",
        "cudnn": "9.10.2.21",
        "nccl": "2.27.3",
    }
    assert facts.warnings() == []
    assert cuda_facts([("numpy", "2.3.5")], ["PATH=/usr/bin"]) is None


def test_base_and_wheels_disagree_and_majors_mix() -> None:
    facts = cuda_facts([*CU12, ("nvidia-cudnn-cu13", "9.13.0.50")], ["CUDA_VERSION=12.4.1"])
    assert facts is not None
    warnings = facts.warnings()
    assert len(warnings) == 2
    assert "CUDA 12 and 13" in warnings[0] and "CUDA 12.4.1" in warnings[1] and "12.9.79" in warnings[1]
    # CUDA 13's toolkit wheels carry no -cuNN suffix: the major comes from the version.
    unsuffixed = cuda_facts([("nvidia-cuda-runtime", "13.0.96"), ("nvidia-nccl-cu13", "2.28.3")], [])
    assert unsuffixed is not None and unsuffixed.majors == (13,) and unsuffixed.require == "cuda>=13.0"
    base_only = cuda_facts([], ["CUDA_VERSION=12.4.1"])
    assert base_only is not None and base_only.require is None  # the base's own NVIDIA_REQUIRE_CUDA stays


def test_only_cuda_targets_get_nvidia_require_cuda() -> None:
    pins = [WheelPin(n, v, f"{n}-{v}-py3-none-any.whl", "0" * 64, 1) for n, v in CU12]
    logged: list[str] = []
    cuda = with_cuda(Policy(("python",), cuda=True), pins, {"config": {"Env": ["CUDA_VERSION=12.4.1"]}}, logged.append)
    assert cuda.image_env["NVIDIA_REQUIRE_CUDA"] == "cuda>=12.9"
    assert logged and logged[0].startswith("warning: the base has CUDA 12.4.1")
    cpu = with_cuda(Policy(("python",)), pins, {}, logged.append)
    assert "NVIDIA_REQUIRE_CUDA" not in cpu.image_env


def test_lock_warns_about_mixed_cuda_majors(tmp_path: Path) -> None:
    write_project(tmp_path, tool="[tool.repro-build.targets.cuda]\n")
    (tmp_path / "repro-locks").mkdir()
    pin = "{} \\\n    --hash=sha256:" + "0" * 64 + "\n"
    lock = "".join(pin.format(p) for p in ("nvidia-cuda-runtime-cu12==12.9.79", "nvidia-cudnn-cu13==9.13.0.50"))
    (tmp_path / "repro-locks" / "cuda.txt").write_text(lock)
    warnings = lock_warnings(load_config(tmp_path))
    assert len(warnings) == 1 and warnings[0].startswith(
        "target cuda: the locked nvidia-* wheels are built for CUDA 12 and 13"
    )
    (tmp_path / "repro-locks" / "cuda.txt").write_text(pin.format("nvidia-cuda-runtime-cu12==12.9.79"))
    assert lock_warnings(load_config(tmp_path)) == []


def test_doctor_gpu_facts_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in nvidia-smi answering the doctor's query: the model and driver are reported as given."""
    from reprobuild.determinism import hookfacts

    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 550.54.15'\necho 'NVIDIA H100 80GB HBM3, 550.54.15'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    facts = hookfacts.gpu()
    assert facts["present"] and facts["gpus"] == ["NVIDIA H100 80GB HBM3"] * 2 and facts["driver"] == "550.54.15"
    lines = hookfacts.render({**hookfacts.collect(), "gpu": facts})
    assert "info    gpu: NVIDIA H100 80GB HBM3, NVIDIA H100 80GB HBM3; driver 550.54.15" in lines[-1]
