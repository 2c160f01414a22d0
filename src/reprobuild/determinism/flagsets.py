"""Determinism flag sets per framework: the environment a target's image carries.

Each value, its source and the versions it applies to are listed in ``docs/explanation/determinism.md``
("Framework determinism flags"). Env flags must be in the environment before the library reads them, so
they go into the image config's ``Env``. Runtime switches with no env form (``torch.use_deterministic_algorithms``,
cuDNN, ``torch.set_num_threads``, ``tf.config.experimental.enable_op_determinism``) and the seeds are applied
by the in-image hook, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

#: Fixed thread count used by the math-library sets: results of threaded BLAS reductions depend on
#: the thread count, so it must not follow the host's core count (Intel oneMKL "Reproducibility Conditions").
DEFAULT_THREADS = "1"

#: The instruction set the opt-in ``cpu-isa`` set pins: AVX2 (x86-64-v3), which every x86-64 server CPU
#: sold since 2015 has; kernels are then chosen the same way on an AVX-512 machine as on an AVX2 one.
PINNED_ISA = "AVX2"

#: ``XLA_FLAGS`` is a space-separated list of ``--name=value`` options: merged option by option, not replaced.
XLA_FLAGS = "XLA_FLAGS"

FLAG_SETS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        # Hash randomisation changes set/dict iteration order and frozensets in pyc files.
        "python": MappingProxyType({"PYTHONHASHSEED": "0"}),
        # Without a fixed cuBLAS workspace, mm/mv/bmm raise under deterministic mode (CUDA >= 10.2);
        # ":4096:8" costs about 24 MiB of GPU memory and is what Lightning sets. torch's intra-op thread
        # pool follows OMP_NUM_THREADS; the hook also calls torch.set_num_threads with it.
        "torch": MappingProxyType({"CUBLAS_WORKSPACE_CONFIG": ":4096:8", "OMP_NUM_THREADS": DEFAULT_THREADS}),
        # TF_DETERMINISTIC_OPS is deprecated since TF 2.8 in favour of enable_op_determinism(), which the hook
        # calls; oneDNN's custom CPU ops (on by default on Linux x86 since TF 2.9) reorder float sums.
        "tensorflow": MappingProxyType({"TF_ENABLE_ONEDNN_OPTS": "0"}),
        "jax": MappingProxyType({XLA_FLAGS: "--xla_gpu_deterministic_ops=true"}),
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
        # Opt-in: the same kernels on every x86-64 CPU with AVX2, whatever newer instructions the host has.
        # OPENBLAS_CORETYPE only acts in DYNAMIC_ARCH builds (the numpy/scipy wheels are); Haswell = AVX2.
        "cpu-isa": MappingProxyType(
            {
                "MKL_ENABLE_INSTRUCTIONS": PINNED_ISA,
                "ONEDNN_MAX_CPU_ISA": PINNED_ISA,
                "OPENBLAS_CORETYPE": "Haswell",
            }
        ),
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


def merge_xla_flags(ours: str, theirs: str) -> str:
    """``XLA_FLAGS`` with the user's options added to ours; the user's value wins for an option both set.

    Options are ``--name=value`` (or a bare ``--name``) separated by spaces; their order is kept, ours first.
    """
    merged: dict[str, str] = {}
    for text in (ours, theirs):
        for option in text.split():
            merged[option.partition("=")[0]] = option
    return " ".join(merged.values())
