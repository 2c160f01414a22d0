"""Where every wheel came from: a find-links lock rebuilds with no extra environment and an empty cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from reprobuild.config import Config, load_config
from reprobuild.image.wheels import WheelPin
from reprobuild.image.wheelsources import (
    Origins,
    RecordedWheel,
    record_wheels,
    recorded_wheels,
    split_uv_annotations,
)
from reprobuild.lock.inputs import file_sha256, render_inputs_file
from tests.foundation.helpers import git_commit, write_project
from tests.image.conftest import GOLDEN_PROJECT
from tests.image.fakebase import fake_base

CLI = (sys.executable, "-m", "reprobuild")
PACKAGES = Path(__file__).parents[1] / "packages"


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"UV_FIND_LINKS", "REPRO_BUILD_CACHE"}}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, env={**base, **env}, cwd=cwd)


def test_annotations_are_read_and_taken_out() -> None:
    body = (
        "--find-links /host/wheels\n--find-links https://host.invalid/links/\n\n"
        "a==1.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via p\n    # from file:///host/wheels\n"
        "b[x]==2.0 \\\n    --hash=sha256:" + "b" * 64 + "\n    # via p\n    # from https://host.invalid/links/\n"
        "c==3.0 \\\n    --hash=sha256:" + "c" * 64 + "\n    # via p\n    # from https://index.invalid/simple\n"
    )
    text, origins = split_uv_annotations(body)
    assert "/host" not in text and "# from" not in text and text.startswith("a==1.0")
    assert origins.by_package == {
        "a": "file:///host/wheels",
        "b": "https://host.invalid/links/",
        "c": "https://index.invalid/simple",
    }
    assert origins.kind("https://host.invalid/links") == "find-links"
    assert origins.kind("https://index.invalid/simple") == "index"
    assert Origins({}, frozenset()).kind(None) == "index"


@pytest.fixture(scope="module")
def local_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """flit_pure 1.0.0, built here: a wheel that no index has."""
    out = tmp_path_factory.mktemp("built")
    subprocess.run(
        ["uv", "build", "-q", "--wheel", "--out-dir", str(out), str(PACKAGES / "flit_pure")],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("flit_pure-1.0.0-*.whl")
    return wheel


def _project(tmp_path: Path, links: Path, wheel: Path) -> Path:
    project = tmp_path / "app"
    shutil.copytree(GOLDEN_PROJECT, project, ignore=shutil.ignore_patterns("build", "dist", "repro-locks"))
    fake_base(project / "fakebase")
    text = (project / "pyproject.toml").read_text()
    text = text.replace('dependencies = ["six==1.17.0"]', 'dependencies = ["six==1.17.0", "flit-pure==1.0.0"]')
    (project / "pyproject.toml").write_text(text)
    (project / ".gitignore").write_text("build/\ndist/\n")
    links.mkdir(parents=True, exist_ok=True)
    shutil.copy(wheel, links / wheel.name)
    return project


def _wheels_record(project: Path) -> dict[str, dict[str, Any]]:
    inputs = json.loads((project / "repro-locks" / "inputs.json").read_text())
    return {w["name"]: w for w in inputs["locks"]["cpu.txt"]["wheels"]}


@pytest.mark.network
def test_find_links_in_the_project_rebuilds_with_no_environment(tmp_path: Path, local_wheel: Path) -> None:
    project = _project(tmp_path, tmp_path / "app" / "wheels", local_wheel)
    locked = run_cli("lock", "--project", str(project), "-q", env={"UV_FIND_LINKS": str(project / "wheels")})
    assert locked.returncode == 0, locked.stderr
    wheels = _wheels_record(project)
    assert wheels["flit-pure"]["source"] == {"find-links": "wheels"}
    assert wheels["flit-pure"]["filename"] == local_wheel.name
    six = wheels["six"]["source"]
    assert set(six) == {"index", "url"} and six["url"].endswith("/six-1.17.0-py2.py3-none-any.whl")
    for name in ("cpu.txt", "inputs.json"):
        assert str(tmp_path) not in (project / "repro-locks" / name).read_text(), name  # no host path
    git_commit(project)  # the wheels directory is committed with the project

    # No UV_FIND_LINKS, an empty wheel cache: the recorded sources are enough.
    first = run_cli("image", "--project", str(project), "-q", env={"REPRO_BUILD_CACHE": str(tmp_path / "c1")})
    assert first.returncode == 0, first.stderr
    again = run_cli("image", "--project", str(project), "-q", env={"REPRO_BUILD_CACHE": str(tmp_path / "c2")})
    assert again.returncode == 0, again.stderr
    assert first.stdout == again.stdout and first.stdout.startswith("sha256:")
    manifest = json.loads((project / "build" / "cpu" / "manifest.json").read_text())
    assert {w["filename"] for w in manifest["wheels"]} == {local_wheel.name, "six-1.17.0-py2.py3-none-any.whl"}

    shutil.copy(project / "build" / "cpu" / "manifest.json", tmp_path / "manifest.json")
    verified = run_cli(
        "verify", str(tmp_path / "manifest.json"), env={"REPRO_BUILD_CACHE": str(tmp_path / "c3")}, cwd=project
    )
    assert verified.returncode == 0, verified.stderr
    assert "artifacts identical" in verified.stdout


@pytest.mark.network
def test_find_links_outside_the_repository_is_not_recorded(tmp_path: Path, local_wheel: Path) -> None:
    links = tmp_path / "host-wheels"
    project = _project(tmp_path, links, local_wheel)
    locked = run_cli("lock", "--project", str(project), "-q", env={"UV_FIND_LINKS": str(links)})
    assert locked.returncode == 0, locked.stderr
    assert _wheels_record(project)["flit-pure"]["source"] == {"find-links": None}
    assert str(links) not in (project / "repro-locks" / "inputs.json").read_text()
    git_commit(project)

    # The lock does not say where this host keeps it: without it cached or configured, the error says where it looked.
    cache = {"REPRO_BUILD_CACHE": str(tmp_path / "c1")}
    out = run_cli("image", "--project", str(project), "-q", env=cache)
    assert out.returncode == 2, out.stderr
    assert f"{local_wheel.name} (sha256 " in out.stderr and "looked in:" in out.stderr
    assert "the wheel cache" in out.stderr and "so the lock does not name it" in out.stderr
    assert "UV_FIND_LINKS" in out.stderr and "Traceback" not in out.stderr
    built = run_cli("image", "--project", str(project), "-q", env={**cache, "UV_FIND_LINKS": str(links)})
    assert built.returncode == 0, built.stderr
    # Once in the verified cache it needs nothing else.
    again = run_cli("image", "--project", str(project), "-q", env=cache)
    assert again.returncode == 0, again.stderr
    assert again.stdout == built.stdout


def _config(tmp_path: Path) -> Config:
    root = write_project(tmp_path / "proj")
    return load_config(root)


def test_sources_carry_no_credentials_and_no_host_path(tmp_path: Path) -> None:
    config = _config(tmp_path)
    inside = config.root / "vendor" / "wheels"
    outside = tmp_path / "elsewhere"
    pins = [WheelPin(n, "1.0", f"{n}-1.0-py3-none-any.whl", c * 64, None) for n, c in zip("abcd", "abcd", strict=True)]
    selected = [
        (pins[0], "https://reader:t0ken@idx.invalid/files/a-1.0-py3-none-any.whl"),
        (pins[1], "https://links.invalid/dl/b-1.0-py3-none-any.whl"),
        (pins[2], (inside / "c-1.0-py3-none-any.whl").as_uri()),
        (pins[3], (outside / "d-1.0-py3-none-any.whl").as_uri()),
    ]
    origins = Origins(
        {
            canonicalize_name("a"): "https://reader:t0ken@idx.invalid/simple",
            canonicalize_name("b"): "https://links.invalid/dl/",
            canonicalize_name("c"): inside.as_uri(),
            canonicalize_name("d"): outside.as_uri(),
        },
        frozenset({"https://links.invalid/dl/", str(inside), str(outside)}),
    )
    records = {r["name"]: r["source"] for r in record_wheels(config, selected, origins)}
    assert records == {
        "a": {"index": "https://idx.invalid/simple", "url": "https://idx.invalid/files/a-1.0-py3-none-any.whl"},
        "b": {"find-links": "https://links.invalid/dl/", "url": "https://links.invalid/dl/b-1.0-py3-none-any.whl"},
        "c": {"find-links": "vendor/wheels"},
        "d": {"find-links": None},
    }
    assert "t0ken" not in json.dumps(records)


def test_a_record_that_does_not_match_the_lock_is_not_used(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config.locks_dir.mkdir(parents=True)
    lock = config.locks_dir / "cpu.txt"
    lock.write_text(f"a==1.0 \\\n    --hash=sha256:{'a' * 64}\n")
    target = config.target("cpu")
    good: dict[str, object] = {
        "filename": "a-1.0-py3-none-any.whl",
        "name": "a",
        "sha256": f"sha256:{'a' * 64}",
        "size": None,
    }
    good |= {"version": "1.0", "source": {"find-links": "wheels"}}

    def record(wheels: list[dict[str, object]], sha: str | None = None) -> list[RecordedWheel] | None:
        entry = {"checksum": "", "inputs": {}, "sha256": sha or file_sha256(lock), "wheels": wheels}
        (config.locks_dir / "inputs.json").write_text(render_inputs_file({"cpu.txt": entry}))
        return recorded_wheels(config, target, lock)

    found = record([good])
    assert found is not None and found[0].pin.sha256 == "a" * 64 and found[0].source == {"find-links": "wheels"}
    assert record([{**good, "sha256": f"sha256:{'b' * 64}"}]) is None  # a hash the lock does not allow
    assert record([{**good, "version": "2.0"}]) is None
    assert record([{**good, "filename": "../../etc/a-1.0-py3-none-any.whl"}]) is None  # a path, not a file name
    assert record([]) is None  # a pin without a file
    assert record([good], sha="sha256:" + "0" * 64) is None  # made for another lock text
