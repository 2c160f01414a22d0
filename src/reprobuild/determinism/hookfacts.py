"""Facts the doctor reports about the machine it runs on (installed as ``_repro_build_determinism_facts``).

Thread counts and the CPU's instruction set decide which kernels numerical libraries pick; the GPU model,
driver, CUDA and cuDNN versions decide the same on a GPU. Each fact comes from the cheapest source that
has it and is ``None`` when absent: nothing here fails without a GPU. Standard library only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

#: Env variables that fix a thread count or an instruction set, reported whether or not the policy sets them.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
ISA_ENV = ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "OPENBLAS_CORETYPE", "MKL_CBWR")
#: CPU flags (from /proc/cpuinfo) that select kernel families in MKL, oneDNN and OpenBLAS.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "asimd", "sve")


def cpu() -> dict[str, Any]:
    """CPU model, the ISA flags of interest it has, and the logical CPU count this process may use."""
    model = None
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and model is None:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 0
    return {"model": model, "isa": [f for f in ISA_FLAGS if f in flags], "cpus": count}


def _nvidia_smi() -> dict[str, Any] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [line.split(", ") for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0 or not rows:
        return None
    return {"gpus": [r[0] for r in rows], "driver": rows[0][-1]}


def _libcuda_driver_api() -> str | None:
    """The CUDA version the driver supports (``cuDriverGetVersion``), via ctypes; None without a driver."""
    import ctypes

    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    version = ctypes.c_int()
    if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return None
    return f"{version.value // 1000}.{version.value % 1000 // 10}"


def gpu() -> dict[str, Any]:
    """GPU model(s), driver, the driver's CUDA, and torch's CUDA/cuDNN when torch is imported already."""
    facts: dict[str, Any] = {"gpus": [], "driver": None, "driver_cuda": _libcuda_driver_api()}
    smi = _nvidia_smi()
    if smi:
        facts.update(smi)
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            facts["torch_cuda"] = torch.version.cuda
            facts["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
            if torch.cuda.is_available() and not facts["gpus"]:
                facts["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        except Exception as e:  # a broken CUDA install must not stop the report
            facts["error"] = f"{type(e).__name__}: {e}"
    facts["present"] = bool(facts["gpus"])
    return facts


def collect() -> dict[str, Any]:
    """Threads, ISA and GPU facts of this process's machine."""
    return {
        "cpu": cpu(),
        "threads": {name: os.environ.get(name) for name in THREAD_ENV},
        "isa_env": {name: os.environ.get(name) for name in ISA_ENV},
        "gpu": gpu(),
    }


def render(facts: dict[str, Any]) -> list[str]:
    """The facts as report lines."""
    c = facts["cpu"]
    threads = ", ".join(f"{k}={v if v is not None else '(unset)'}" for k, v in facts["threads"].items())
    pinned = ", ".join(f"{k}={v}" for k, v in facts["isa_env"].items() if v is not None) or "none"
    lines = [
        f"info    cpu: {c['model'] or '?'}, {c['cpus']} usable CPU(s), ISA {' '.join(c['isa']) or '?'}",
        f"info    threads: {threads}",
        f"info    ISA pinned by env: {pinned}",
    ]
    g = facts["gpu"]
    if g["present"]:
        lines.append(
            f"info    gpu: {', '.join(g['gpus'])}; driver {g.get('driver') or '?'} (CUDA {g.get('driver_cuda') or '?'})"
            f"; torch CUDA {g.get('torch_cuda') or '-'}, cuDNN {g.get('cudnn') or '-'}"
        )
    else:
        lines.append("info    gpu: none visible")
    return lines
