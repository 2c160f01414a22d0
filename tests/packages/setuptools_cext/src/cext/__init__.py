"""cext fixture."""

from cext._speed import add, where

__all__ = ["add", "where"]
