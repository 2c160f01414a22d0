"""The templates ship inside the wheel (hatchling force-include) and are found there and in a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from reprobuild.distribution import DISTRIBUTION
from reprobuild.templates import templates_root
from reprobuild.uvbin import find_uv
from tests.templates.helpers import ROOT

EXPECTED = {
    "Dockerfile.tmpl",
    "init/Dockerfile.base.tmpl",
    "init/nox-session.py.tmpl",
    "init/noxfile.py.tmpl",
    "init/repro-build.yml.tmpl",
    "init/tool-repro-build.toml.tmpl",
}


def test_checkout_templates_are_found() -> None:
    root = Path(str(templates_root()))
    files = {p.relative_to(root).as_posix() for p in root.rglob("*.tmpl")}
    assert files == EXPECTED
    assert root == ROOT / "templates" or root.parent.name == "reprobuild"


@pytest.mark.slow
@pytest.mark.network
def test_wheel_contains_and_serves_the_templates(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    subprocess.run(
        [find_uv(), "build", "--wheel", "--quiet", "--out-dir", str(out), "--build-constraint",
         str(ROOT / "repro-locks" / "build.txt"), "--require-hashes", str(ROOT)],
        check=True,
    )  # fmt: skip
    # The distribution is `reprobuild` (the index's `repro-build` is another project); the command stays.
    wheel = next(out.glob(f"{DISTRIBUTION}-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        assert f"\nName: {DISTRIBUTION}\n" in zf.read(metadata).decode()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "repro-build = reprobuild.cli.main:main" in zf.read(entry_points).decode()
        zf.extractall(tmp_path / "site")
    assert {f"reprobuild/templates/{n}" for n in EXPECTED} <= names
    for name in EXPECTED:
        assert (tmp_path / "site" / "reprobuild" / "templates" / name).read_bytes() == (
            ROOT / "templates" / name
        ).read_bytes()
    # Imported from the unpacked wheel (first on sys.path), the package reads its own copy.
    probe = subprocess.run(
        [sys.executable, "-c", "import reprobuild.templates as t; print(t.templates_root())"],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == str(tmp_path / "site" / "reprobuild" / "templates")
