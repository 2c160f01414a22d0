"""Debian version order agrees with ``dpkg --compare-versions``."""

from __future__ import annotations

import itertools
import subprocess

import pytest

from reprobuild.base.debian.version import DebVersion, compare_versions, satisfies
from reprobuild.errors import BaseImageError
from tests.testbed import require_tool

VERSIONS = [
    "0", "1.0", "1.0-1", "1.0-0", "1.0~rc1", "1.0~~", "1.0~", "1.0a", "1.0+b1", "1.0.1", "1:0.9",
    "2.36-9+deb12u10", "2.36-9+deb12u9", "3.11.2-6+deb12u6", "3.11.2-6", "1.2.13.dfsg-1",
    "1:1.2.13.dfsg-1", "10.0.0", "9.9", "3.0.20-1~deb12u2", "3.0.20-1",
]  # fmt: skip


def test_order_matches_dpkg() -> None:
    require_tool("dpkg", "`apt-get install -y dpkg` (Debian has it; `.ci/run` runs on Debian)")
    wrong = []
    for a, b in itertools.product(VERSIONS, VERSIONS):
        ours = compare_versions(a, b)
        lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0
        eq = subprocess.run(["dpkg", "--compare-versions", a, "eq", b], check=False).returncode == 0
        if (ours < 0) != lt or (ours == 0) != eq:
            wrong.append((a, b, ours))
    assert wrong == []


def test_relations() -> None:
    assert satisfies("1.0-1", ">=", "1.0")
    assert not satisfies("1.0~rc1", ">=", "1.0")
    assert satisfies("1.0", "<<", "1.0.1")
    assert satisfies("2:0", ">>", "1:9")
    assert str(DebVersion.parse("1:2.0-3")) == "1:2.0-3"


def test_malformed_version() -> None:
    with pytest.raises(BaseImageError, match="does not start with a digit"):
        compare_versions("abc", "1.0")
