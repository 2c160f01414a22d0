"""hatch-pure fixture."""

__all__ = ["answer"]


def answer() -> int:
    return 42
