"""Nothing from a manifest is a path: hostile wheel file names and project paths fail closed.

``verify`` used to join ``wheels[].filename`` onto its cache (an absolute name or ``../`` deleted and
replaced a file anywhere) and ``project.path`` onto its checkout (another directory was rebuilt and
reported identical). Every such value is now validated as a name before anything is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from reprobuild.errors import ManifestError
from reprobuild.manifest.validate import project_path, resolve_inside, wheel_filename
from tests.cli import run_cli
from tests.foundation.helpers import git_commit

VICTIM = b"precious data that verify must never touch\n"


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../../../victim.whl",
        "a/../../b-1.0-py3-none-any.whl",
        "six-1.17.0-py2.py3-none-any.whl/..",
        "..whl",
        "six-1.17.0-py2.py3-none-any.whl\n",
        "six-1.17.0-py2.py3-none-any.whl\x00.whl",
        "C:\\x\\six-1.17.0-py2.py3-none-any.whl",
        "six.whl",
        "",
        7,
    ],
)
def test_hostile_wheel_file_names_are_refused(name: object) -> None:
    with pytest.raises(ManifestError, match=r"wheels\[0\]\.filename"):
        wheel_filename(name, path=Path("m.json"), field="wheels[0].filename")


def test_wheel_file_names_are_accepted() -> None:
    for name in ("six-1.17.0-py2.py3-none-any.whl", "numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.whl"):
        assert wheel_filename(name, path=Path("m.json"), field="f") == name


@pytest.mark.parametrize("value", ["/tmp", "../..", "a/../..", "a//b", "./a", "a/", "a\\..", "a/\n", "a/\x1b[2J"])
def test_hostile_project_paths_are_refused(value: str) -> None:
    with pytest.raises(ManifestError, match=r"project\.path"):
        project_path(value, path=Path("m.json"))


def test_symlinked_project_path_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "clone"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "escape").symlink_to(tmp_path / "outside")
    assert resolve_inside(root, PurePosixPath("sub"), path=Path("m.json")) == (root / "sub").resolve()
    with pytest.raises(ManifestError, match="leads outside"):
        resolve_inside(root, PurePosixPath("escape"), path=Path("m.json"))


# ------------------------------------------------------------------ the CLI, with a real built project


def _edited(built: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    data = json.loads((built / "build" / "cpu" / "manifest.json").read_text())
    edit(data)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


@pytest.mark.network
@pytest.mark.parametrize("form", ["absolute", "dotdot"])
def test_verify_never_touches_a_file_a_wheel_name_points_at(built_golden: Path, tmp_path: Path, form: str) -> None:
    cache = tmp_path / "cache"
    victim = tmp_path / "victim.whl"
    victim.write_bytes(VICTIM)
    # Wheels are staged as <build dir>/.<target>-XXXX/wheels/<filename>: joined there (at most 16 levels
    # deep), either name would be the victim.
    name = str(victim) if form == "absolute" else "../" * 16 + str(victim).lstrip("/")
    assert (built_golden / "build" / ".cpu-x" / "wheels" / name).resolve() == victim.resolve()

    def edit(m: dict[str, Any]) -> None:
        m["wheels"][0]["filename"] = name

    out = run_cli(
        "verify",
        str(_edited(built_golden, tmp_path, edit)),
        "--repo",
        str(built_golden),
        env={"REPRO_BUILD_CACHE": str(cache)},
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "wheels[0].filename" in out.stderr and "Traceback" not in out.stderr
    assert victim.read_bytes() == VICTIM
    assert not cache.exists() or not any(cache.rglob("*.whl"))


@pytest.mark.network
@pytest.mark.parametrize("form", ["absolute", "dotdot"])
def test_verify_never_rebuilds_another_directory(built_golden: Path, tmp_path: Path, form: str) -> None:
    other = tmp_path / "other"
    shutil.copytree(built_golden, other, ignore=shutil.ignore_patterns(".git", "build"))
    (other / "src" / "golden_app" / "__init__.py").write_text("EVIL = True\n")

    def edit(m: dict[str, Any]) -> None:
        m["project"]["path"] = str(other) if form == "absolute" else os.path.relpath(other, "/")

    out = run_cli("verify", str(_edited(built_golden, tmp_path, edit)), "--repo", str(built_golden))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "project.path" in out.stderr and "verified" not in out.stdout


@pytest.mark.network
def test_verify_refuses_a_project_path_symlinked_out_of_the_commit(built_golden: Path, tmp_path: Path) -> None:
    """A commit holding ``escape -> /elsewhere`` must not make verify build /elsewhere."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(built_golden), str(clone)], check=True)
    other = tmp_path / "other"
    shutil.copytree(built_golden, other, ignore=shutil.ignore_patterns(".git", "build"))
    (clone / "escape").symlink_to(other)
    git_commit(clone)
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)

    def edit(m: dict[str, Any]) -> None:
        m["project"]["path"] = "escape"
        m["source"]["commit"] = head.stdout.strip()

    out = run_cli("verify", str(_edited(built_golden, tmp_path, edit)), "--repo", str(clone))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "leads outside" in out.stderr and "verified" not in out.stdout


@pytest.mark.network
@pytest.mark.parametrize(
    ("field", "value"),
    [("target", "../../etc"), ("commit", "--orphan=x"), ("remote", "--upload-pack=touch /tmp/pwned")],
)
def test_verify_refuses_option_and_path_shaped_values(
    built_golden: Path, tmp_path: Path, field: str, value: str
) -> None:
    def edit(m: dict[str, Any]) -> None:
        if field == "target":
            m["target"] = value
        else:
            m["source"][field] = value

    out = run_cli("verify", str(_edited(built_golden, tmp_path, edit)), "--repo", str(built_golden))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "error:" in out.stderr and "Traceback" not in out.stderr
