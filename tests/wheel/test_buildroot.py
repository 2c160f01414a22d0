"""The fixed build root: same absolute path for a project whatever the checkout's location and TMPDIR."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from reprobuild.wheel.build import build_wheel
from reprobuild.wheel.buildroot import BASE, build_root_path, fixed_build_root
from tests.wheel.fixtures import make_repo


def test_the_root_is_fixed_emptied_and_removed() -> None:
    root = build_root_path("Repro_Build.Test-Root")
    assert root == BASE / "repro-build-test-root"
    root.mkdir(parents=True, exist_ok=True)
    (root / "left-by-a-killed-build").write_text("x")
    with fixed_build_root("Repro_Build.Test-Root") as held:
        assert held == root and list(held.iterdir()) == []
        (held / "work").mkdir()
    assert not root.exists()


@pytest.mark.network
@pytest.mark.slow
def test_generated_files_with_the_build_path_match_across_checkouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_tmp = tmp_path / "some" / "other" / "tmp"
    other_tmp.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(other_tmp))
    first = make_repo("embeds_path", tmp_path / "a" / "embeds_path")
    second = make_repo("embeds_path", tmp_path / "a-much-longer-checkout-location" / "x" / "embeds_path")
    one = build_wheel(first, out_dir=tmp_path / "out1", sdist=True)
    monkeypatch.delenv("TMPDIR")  # the second build with the default temporary directory
    two = build_wheel(second, out_dir=tmp_path / "out2", sdist=True)
    assert [a.sha256 for a in one.artifacts] == [a.sha256 for a in two.artifacts]
    with zipfile.ZipFile(tmp_path / "out1" / one.artifacts[-1].filename) as z:
        generated = z.read("embeds_path/_build_config.py").decode()
    assert generated == f"SOURCE_DIR = '{build_root_path('embeds-path')}/unpack/embeds_path-1.0.0'\n"
