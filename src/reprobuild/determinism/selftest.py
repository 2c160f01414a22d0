"""``doctor --selftest``: small fixed computations run twice and compared bit for bit.

Installed in images as ``_repro_build_determinism_selftest``. Each op builds its inputs from a fixed private
generator (never the global one, so the seed policy does not matter) and returns the result's bytes. numpy is
always tested when installed (matmul and a float32 reduction, both threaded in BLAS or SIMD); torch when
installed (matmul, conv2d, ``index_add_`` and ``scatter_add_``, whose CUDA kernels use atomics), on CPU and
on the GPU when one is visible. Standard library only, besides the frameworks themselves.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from typing import Any

Op = tuple[str, Callable[[], bytes]]


def numpy_ops() -> list[Op]:
    import numpy as np  # type: ignore[import-not-found, unused-ignore]

    rng = np.random.RandomState(1234)
    a = rng.standard_normal((256, 256))
    b = rng.standard_normal((256, 256))
    v = rng.standard_normal(1_000_003).astype(np.float32)

    def matmul() -> bytes:
        return bytes((a @ b).tobytes())

    def reduction() -> bytes:
        return bytes(np.sum(v).tobytes())

    return [("numpy.matmul", matmul), ("numpy.sum(float32)", reduction)]


def torch_ops(device: str) -> list[Op]:
    import torch  # type: ignore[import-not-found, unused-ignore]

    g = torch.Generator().manual_seed(1234)
    a = torch.randn(256, 256, generator=g).to(device)
    b = torch.randn(256, 256, generator=g).to(device)
    image = torch.randn(4, 8, 32, 32, generator=g).to(device)
    kernel = torch.randn(16, 8, 3, 3, generator=g).to(device)
    index = torch.randint(0, 64, (100_000,), generator=g).to(device)
    values = torch.randn(100_000, generator=g).to(device)

    def raw(t: Any) -> bytes:
        # Not via .numpy(): torch images need not have numpy (torch then raises "Numpy is not available").
        return bytes(t.detach().cpu().contiguous().view(torch.uint8).flatten().tolist())

    return [
        (f"torch.matmul[{device}]", lambda: raw(a @ b)),
        (f"torch.conv2d[{device}]", lambda: raw(torch.nn.functional.conv2d(image, kernel, padding=1))),
        (f"torch.index_add_[{device}]", lambda: raw(torch.zeros(64, device=device).index_add_(0, index, values))),
        (f"torch.scatter_add_[{device}]", lambda: raw(torch.zeros(64, device=device).scatter_add_(0, index, values))),
    ]


def default_ops() -> list[Op]:
    """The ops for every installed framework (and device)."""
    ops: list[Op] = []
    if importlib.util.find_spec("numpy") is not None:
        ops += numpy_ops()
    if importlib.util.find_spec("torch") is not None:
        import torch  # type: ignore[import-not-found, unused-ignore]

        ops += torch_ops("cpu")
        if torch.cuda.is_available():
            ops += torch_ops("cuda")
    return ops


def run(ops: Iterable[Op] | None = None, repeats: int = 2) -> dict[str, Any]:
    """Run each op ``repeats`` times; ``{"ok", "ops": {name: "same"|"DIFFERENT"|"error: ..."}, "failed"}``."""
    results: dict[str, str] = {}
    for name, op in default_ops() if ops is None else ops:
        try:
            outputs = [op() for _ in range(repeats)]
        except Exception as e:  # an op that raises (e.g. no deterministic kernel) fails the test, named
            results[name] = f"error: {type(e).__name__}: {e}"
            continue
        results[name] = "same" if all(o == outputs[0] for o in outputs) else "DIFFERENT"
    failed = [name for name, result in results.items() if result != "same"]
    return {"ok": not failed, "ops": results, "failed": failed}
