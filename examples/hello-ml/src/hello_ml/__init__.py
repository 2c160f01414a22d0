"""hello-ml: repro-build's bundled example app."""

__version__ = "0.1.0"


def checksum(n: int = 1000) -> float:
    """A small deterministic computation: the sum of a fixed matrix product."""
    import numpy as np

    a = np.arange(n * 4, dtype=np.float64).reshape(n, 4) / n
    return float((a.T @ a).sum())
