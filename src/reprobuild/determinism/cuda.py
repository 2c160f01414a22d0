"""CUDA as data: the CUDA runtime, cuBLAS, cuDNN and NCCL versions a target's locked wheels carry.

NVIDIA publishes its libraries as wheels named ``nvidia-<library>-cu<major>`` (``nvidia-cudnn-cu12``) and,
from CUDA 13, the toolkit's own libraries also without the suffix (``nvidia-cuda-runtime`` 13.x); the wheel's
version is the library's version. A CUDA base image (``nvidia/cuda``) says its toolkit version in the env
variable ``CUDA_VERSION``. From these, the manifest records the versions, the image of a `cuda` target with
the runtime wheel gets ``NVIDIA_REQUIRE_CUDA=cuda>=X.Y`` (the NVIDIA container runtime then refuses a driver
too old for the runtime), and ``image`` warns when the base and the wheels disagree or when wheels of two
CUDA majors mix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

#: The libraries recorded, by the part of the wheel name after ``nvidia-``.
LIBRARIES = {"cuda-runtime": "cuda_runtime", "cublas": "cublas", "cudnn": "cudnn", "nccl": "nccl"}
_WHEEL_RE = re.compile(r"^nvidia-(?P<lib>[a-z0-9-]+?)(?:-cu(?P<major>\d+))?$")
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)")


@dataclass(frozen=True)
class CudaFacts:
    """What a target's wheels and base say about CUDA."""

    versions: tuple[tuple[str, str], ...]  # (library, version) for LIBRARIES found in the wheels
    majors: tuple[int, ...]  # the CUDA majors of every nvidia-* wheel, sorted
    base_cuda: str | None  # the base's CUDA_VERSION

    def version(self, library: str) -> str | None:
        return dict(self.versions).get(library)

    @property
    def require(self) -> str | None:
        """``cuda>=X.Y`` from the CUDA runtime wheel, for NVIDIA_REQUIRE_CUDA; None without one.

        A CUDA base without the wheel keeps its own ``NVIDIA_REQUIRE_CUDA`` (``nvidia/cuda`` images set one,
        with driver-branch constraints this one would drop).
        """
        m = _VERSION_RE.match(self.version("cuda_runtime") or "")
        return f"cuda>={m.group(1)}.{m.group(2)}" if m else None

    def warnings(self) -> list[str]:
        """Disagreements between the base's CUDA and the wheels', and wheels of more than one CUDA major."""
        out = []
        if len(self.majors) > 1:
            out.append(
                "the locked nvidia-* wheels are built for CUDA "
                + " and ".join(str(m) for m in self.majors)
                + "; a process loads one CUDA runtime, so libraries of the other major fail or mismatch"
            )
        runtime = _VERSION_RE.match(self.version("cuda_runtime") or "")
        base = _VERSION_RE.match(self.base_cuda or "")
        if runtime and base and runtime.groups() != base.groups():
            out.append(
                f"the base has CUDA {self.base_cuda} but the locked CUDA runtime wheel is "
                f"{self.version('cuda_runtime')}: two CUDA runtimes in one image; pick a base of the same "
                "CUDA version or a plain base (the wheels carry the runtime)"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_cuda_version": self.base_cuda,
            "cuda_majors": list(self.majors),
            "require": self.require,
            **{library: self.version(library) for library in LIBRARIES.values()},
        }


def cuda_facts(wheels: Iterable[tuple[str, str]], base_env: Sequence[str]) -> CudaFacts | None:
    """The facts from ``(name, version)`` of the locked wheels and the base's ``Env``; None when no CUDA at all."""
    versions: dict[str, str] = {}
    majors: set[int] = set()
    for name, version in wheels:
        m = _WHEEL_RE.match(canonicalize_name(name))
        if not m:
            continue
        lib = m.group("lib")
        if m.group("major"):
            majors.add(int(m.group("major")))
        elif lib in ("cuda-runtime", "cublas") and _VERSION_RE.match(version):
            majors.add(int(version.split(".")[0]))  # CUDA 13+: toolkit wheels without the -cuNN suffix
        if lib in LIBRARIES:
            versions[LIBRARIES[lib]] = version
    base = next((e.partition("=")[2] for e in base_env if e.startswith("CUDA_VERSION=")), None)
    if not versions and not majors and base is None:
        return None
    return CudaFacts(tuple(sorted(versions.items())), tuple(sorted(majors)), base)
