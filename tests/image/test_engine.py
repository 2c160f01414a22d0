"""The bundled example's `cpu` and `cuda` images on the embedded Debian base: built twice
bit-identically, loaded into the engine and run with `--network none`, pushed with the same digest."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reprobuild.cli.main import main
from reprobuild.oci.registry import RegistryClient
from tests.foundation.helpers import git_commit
from tests.image.conftest import EXAMPLE, copy_project
from tests.testbed import Engine, Registry

pytestmark = [pytest.mark.network, pytest.mark.slow]
CLI = (sys.executable, "-m", "reprobuild")


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """The example, committed in a fresh repo, built once for every target; yields (root, digests)."""
    root = copy_project(EXAMPLE, tmp_path_factory.mktemp("example") / "hello-ml", git=True)
    digests = {}
    for target in ("cpu", "cuda"):
        out = subprocess.run(
            [*CLI, "image", "--project", str(root), "--target", target, "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        digests[target] = out.stdout.strip()
    yield root, digests


def test_second_build_elsewhere_is_bit_identical(example: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, digests = example
    again = copy_project(root, tmp_path / "again" / "hello-ml", git=False)
    subprocess.run(["rm", "-rf", str(again / ".git")], check=True)
    subprocess.run(["cp", "-a", str(root / ".git"), str(again / ".git")], check=True)
    for target, digest in digests.items():
        out = subprocess.run(
            [*CLI, "image", "--project", str(again), "--target", target, "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == digest


def _docker(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([engine.cli, *args], capture_output=True, text=True, check=False)


def test_cpu_image_loads_and_runs(example: tuple[Path, dict[str, str]], engine: Engine) -> None:
    root, digests = example
    assert main(["image", "--project", str(root), "--target", "cpu", "--load", "-q"]) == 0
    manifest = json.loads((root / "build" / "cpu" / "manifest.json").read_text())
    assert manifest["outputs"]["manifest_digest"] == digests["cpu"]
    image_id = manifest["outputs"]["image_id"]
    assert _docker(engine, "image", "inspect", "--format", "{{.Id}}", "hello-ml:cpu").stdout.strip() == image_id
    run = _docker(engine, "run", "--rm", "--network", "none", "hello-ml:cpu")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["PYTHONHASHSEED"] == "0" and out["python"].startswith("3.11") and out["checksum"] > 0
    as_nonroot = _docker(engine, "run", "--rm", "--network", "none", "--user", "65532", "hello-ml:cpu")
    assert as_nonroot.returncode == 0, as_nonroot.stderr
    doctor = _docker(
        engine,
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python3",
        "hello-ml:cpu",
        "-m",
        "_repro_build_determinism_doctor",
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "policy met" in doctor.stdout


def _python(engine: Engine, image: str, code: str, *env: str) -> subprocess.CompletedProcess[str]:
    flags = [arg for e in env for arg in ("-e", e)]
    return _docker(engine, "run", "--rm", "--network", "none", *flags, "--entrypoint", "python3", image, "-c", code)


def test_seeded_image_draws_the_same_numbers_in_every_run(example: tuple[Path, dict[str, str]], engine: Engine) -> None:
    """`seed = 0` in the example's cpu target: random and numpy's global state are seeded at first import."""
    root, _ = example
    assert main(["image", "--project", str(root), "--target", "cpu", "--load", "-q"]) == 0
    manifest = json.loads((root / "build" / "cpu" / "manifest.json").read_text())
    image = manifest["outputs"]["image_id"]
    assert manifest["determinism"]["seed"] == 0 and "REPRO_BUILD_SEED=0" in manifest["outputs"]["env"]
    code = "import random, numpy; print(repr(random.random()), repr(float(numpy.random.rand())))"
    first, second = _python(engine, image, code), _python(engine, image, code)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout.split()[0] == repr(__import__("random").Random(0).random())
    other = _python(engine, image, code, "REPRO_BUILD_SEED=1")
    assert other.returncode == 0 and other.stdout != first.stdout
    unseeded = {_python(engine, image, code, "REPRO_BUILD_SEED=off").stdout for _ in range(2)}
    assert len(unseeded) == 2
    doctor = _python(
        engine, image, "import _repro_build_determinism_doctor as d; raise SystemExit(d.main(['--selftest']))"
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "ok      seed 0 (policy 0): random ok, numpy.random ok" in doctor.stdout
    assert "ok      self-test numpy.matmul: same" in doctor.stdout
    assert "ok      self-test numpy.sum(float32): same" in doctor.stdout


def test_image_with_env_overrides_passes_its_own_doctor(
    example: tuple[Path, dict[str, str]], engine: Engine, tmp_path: Path
) -> None:
    """Opt-outs in `env` (new values, `""`, `false`) are written into the policy, so the doctor agrees."""
    root, _ = example
    project = copy_project(root, tmp_path / "optout", git=False)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace('name = "hello-ml"', 'name = "hello-ml-optout"')
    text = text.replace(
        'flags = ["python", "openblas"]\n',
        'flags = ["python", "mkl", "openblas"]\n'
        'env = { OMP_NUM_THREADS = "2", MKL_NUM_THREADS = "2", MKL_CBWR = "", MKL_DYNAMIC = false }\n',
    )
    pyproject.write_text(text)
    subprocess.run(["rm", "-rf", str(project / ".git")], check=True)
    git_commit(project)
    out = subprocess.run(
        [*CLI, "image", "--project", str(project), "--target", "cpu", "--load", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    manifest = json.loads((project / "build" / "cpu" / "manifest.json").read_text())
    env = dict(e.split("=", 1) for e in manifest["outputs"]["env"])
    assert env["OMP_NUM_THREADS"] == "2" and env["MKL_CBWR"] == "" and "MKL_DYNAMIC" not in env
    assert manifest["determinism"]["overrides"]["MKL_DYNAMIC"] is None
    doctor = _python(
        engine,
        manifest["outputs"]["image_id"],
        "import _repro_build_determinism_doctor as d; raise SystemExit(d.main([]))",
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "ok      env MKL_CBWR= (want , overridden by the config)" in doctor.stdout
    assert "info    env MKL_DYNAMIC removed by the config" in doctor.stdout


def test_cuda_image_has_the_runtime_in_its_own_layer(example: tuple[Path, dict[str, str]], engine: Engine) -> None:
    root, _ = example
    assert main(["image", "--project", str(root), "--target", "cuda", "--load", "-q"]) == 0
    manifest = json.loads((root / "build" / "cuda" / "manifest.json").read_text())
    layers = manifest["outputs"]["layers"]
    cuda_layers = [layer for layer in layers if layer["distributions"] == ["nvidia-cuda-runtime-cu12"]]
    assert len(cuda_layers) == 1 and cuda_layers[0]["holds"] == "wheel nvidia-cuda-runtime-cu12"
    env = dict(e.split("=", 1) for e in manifest["outputs"]["env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all" and env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8" and env["NCCL_NVLS_ENABLE"] == "0"
    runtime = next(w["version"] for w in manifest["wheels"] if w["name"] == "nvidia-cuda-runtime-cu12")
    major, minor = runtime.split(".")[:2]
    assert env["NVIDIA_REQUIRE_CUDA"] == f"cuda>={major}.{minor}"
    assert manifest["cuda"]["cuda_runtime"] == runtime and manifest["cuda"]["cuda_majors"] == [12]
    assert manifest["determinism"]["env"]["NVIDIA_REQUIRE_CUDA"] == f"cuda>={major}.{minor}"
    code = (
        "import ctypes, glob; p = glob.glob('/usr/local/lib/python3.11/dist-packages/nvidia/cuda_runtime/lib/"
        "libcudart.so.*'); lib = ctypes.CDLL(p[0]); v = ctypes.c_int(); "
        "assert lib.cudaRuntimeGetVersion(ctypes.byref(v)) == 0; print(v.value)"
    )
    run = _docker(engine, "run", "--rm", "--network", "none", "--entrypoint", "python3", "hello-ml:cuda", "-c", code)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) >= 12000  # the CUDA runtime loads by path without a GPU or driver


def test_push_keeps_the_digest(example: tuple[Path, dict[str, str]], registry: Registry) -> None:
    root, digests = example
    out = subprocess.run(
        [*CLI, "image", "--project", str(root), "-q", "--push", f"{registry.host}/hello-ml:{{target}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [f"{registry.host}/hello-ml@{digests[t]}" for t in ("cpu", "cuda")]
    client = RegistryClient(registry.host)
    for target, digest in digests.items():
        head = client.head_manifest("hello-ml", target)
        assert head is not None and head[0] == digest
    inspect = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/hello-ml:cpu"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["Digest"] == digests["cpu"]
