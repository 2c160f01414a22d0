"""Determinism flag sets per framework: the environment a target's image carries.

Each value and its reason is sourced in ../shared/REFERENCE.md §4 (PyTorch reproducibility notes,
cuBLAS "Results reproducibility", TensorFlow op determinism, XLA flags, oneMKL CNR, OpenBLAS, NCCL).
Env flags must be in the environment before the library reads them, so they go into the image
config's ``Env``. Runtime switches with no env form (``torch.use_deterministic_algorithms``, cuDNN,
``tf.config.experimental.enable_op_determinism``) are applied by the in-image hook, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

#: Fixed thread count used by the math-library sets: results of threaded BLAS reductions depend on
#: the thread count, so it must not follow the host's core count (Intel oneMKL "Reproducibility Conditions").
DEFAULT_THREADS = "1"

FLAG_SETS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        # Hash randomisation changes set/dict iteration order and frozensets in pyc files.
        "python": MappingProxyType({"PYTHONHASHSEED": "0"}),
        # Without a fixed cuBLAS workspace, mm/mv/bmm raise under deterministic mode (CUDA >= 10.2);
        # ":4096:8" costs about 24 MiB of GPU memory and is what Lightning sets.
        "torch": MappingProxyType({"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}),
        "tensorflow": MappingProxyType({"TF_DETERMINISTIC_OPS": "1", "TF_CUDNN_DETERMINISTIC": "1"}),
        "jax": MappingProxyType({"XLA_FLAGS": "--xla_gpu_deterministic_ops=true"}),
        # oneMKL conditional numerical reproducibility needs a fixed branch AND fixed threads.
        "mkl": MappingProxyType(
            {
                "MKL_CBWR": "COMPATIBLE",
                "MKL_DYNAMIC": "FALSE",
                "MKL_NUM_THREADS": DEFAULT_THREADS,
                "OMP_DYNAMIC": "FALSE",
                "OMP_NUM_THREADS": DEFAULT_THREADS,
            }
        ),
        # OpenBLAS reads its thread count once at process start.
        "openblas": MappingProxyType({"OPENBLAS_NUM_THREADS": DEFAULT_THREADS, "OMP_NUM_THREADS": DEFAULT_THREADS}),
        # NVLS reductions are nondeterministic between calls; fix algorithm and protocol.
        "nccl": MappingProxyType({"NCCL_ALGO": "Ring", "NCCL_PROTO": "Simple", "NCCL_NVLS_ENABLE": "0"}),
    }
)

#: Env every `cuda` target carries so the NVIDIA container toolkit mounts the host driver.
CUDA_ENV: Mapping[str, str] = MappingProxyType(
    {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
)


def env_for(sets: Iterable[str]) -> dict[str, str]:
    """The merged environment of the named sets (later sets win on a shared key; they agree today)."""
    env: dict[str, str] = {}
    for name in sets:
        env.update(FLAG_SETS[name])
    return env
