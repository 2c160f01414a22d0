"""Debian version comparison, exactly as ``dpkg --compare-versions`` does it.

Spec: Debian Policy §5.6.12 "Version" (``[epoch:]upstream_version[-debian_revision]``; the
non-digit parts compare with ``~`` before everything, then letters before non-letters) and dpkg's
``lib/dpkg/version.c`` (``verrevcmp``). The tests check it against ``dpkg --compare-versions``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from reprobuild.errors import BaseImageError


@dataclass(frozen=True)
class DebVersion:
    """A parsed Debian version; ``str()`` gives the text back."""

    epoch: int
    upstream: str
    revision: str

    @classmethod
    def parse(cls, text: str) -> DebVersion:
        """Parse ``[epoch:]upstream[-revision]``; raise :class:`BaseImageError` when malformed."""
        value = text.strip()
        epoch = 0
        if ":" in value:
            head, _, value = value.partition(":")
            if not head.isdigit():
                raise BaseImageError(f"Debian version {text!r} has a non-numeric epoch")
            epoch = int(head)
        upstream, sep, revision = value.rpartition("-")
        if not sep:
            upstream, revision = value, ""
        if not upstream or not upstream[0].isdigit():
            raise BaseImageError(
                f"Debian version {text!r} does not start with a digit",
                hint="see Debian Policy §5.6.12",
            )
        return cls(epoch, upstream, revision)

    def __str__(self) -> str:
        text = f"{self.epoch}:{self.upstream}" if self.epoch else self.upstream
        return f"{text}-{self.revision}" if self.revision else text


def _order(c: str) -> int:
    # dpkg's order(): '~' sorts before the end of the string, letters before other characters.
    if c.isdigit():
        return 0
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


@functools.lru_cache(maxsize=65536)
def compare_versions(a: str, b: str) -> int:
    """Negative, zero or positive as version ``a`` sorts before, equal to or after ``b``."""
    va, vb = DebVersion.parse(a), DebVersion.parse(b)
    if va.epoch != vb.epoch:
        return va.epoch - vb.epoch
    return _verrevcmp(va.upstream, vb.upstream) or _verrevcmp(va.revision, vb.revision)


def satisfies(version: str, op: str, wanted: str) -> bool:
    """True when ``version op wanted`` holds (``<<``, ``<=``, ``=``, ``>=``, ``>>``; Policy §7.1)."""
    c = compare_versions(version, wanted)
    if op == "<<":
        return c < 0
    if op in ("<=", "<"):  # "<" and ">" are deprecated spellings of "<=" and ">=" (Policy §7.1)
        return c <= 0
    if op == "=":
        return c == 0
    if op in (">=", ">"):
        return c >= 0
    if op == ">>":
        return c > 0
    raise BaseImageError(f"unknown version relation {op!r} in a Debian dependency")
