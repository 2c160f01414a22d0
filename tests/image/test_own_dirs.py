"""repro-build's own directories (build/, dist/, the cache) never make the work tree dirty, and cross devices."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reprobuild.cli.init import NEXT_STEPS
from reprobuild.fsutil import OUTPUT_GITIGNORE
from tests.foundation.helpers import git_commit
from tests.image.conftest import GOLDEN_PROJECT
from tests.image.fakebase import fake_base
from tests.templates.helpers import plain_project

pytestmark = pytest.mark.network  # locked wheels and .debs come from the configured index and mirror

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def _env(cache_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REPRO_BUILD_CACHE"}
    return {**env, **GIT_ENV, "XDG_CACHE_HOME": str(cache_home)}


def _cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reprobuild", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out.stdout


def _status(root: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _golden_in_git(dest: Path) -> Path:
    """The golden project with its fake base committed, and no .gitignore at all."""
    shutil.copytree(GOLDEN_PROJECT, dest, ignore=shutil.ignore_patterns("build", "dist", "__pycache__"))
    fake_base(dest / "fakebase")
    assert not (dest / ".gitignore").exists()
    git_commit(dest)
    return dest


def test_second_image_and_wheel_with_the_cache_inside_the_tree(tmp_path: Path) -> None:
    """No .gitignore, cache under the tree (reprotest's `home` variation): every build runs, nothing is dirty."""
    root = _golden_in_git(tmp_path / "golden")
    # HOME inside the tree puts the cache key's directory there too (it seals cached base facts).
    env = {**_env(root / ".cache"), "XDG_CONFIG_HOME": str(root / ".config")}
    env.pop("REPRO_BUILD_CACHE_KEY", None)
    first = _ok(_cli(root, env, "image", "-q"))
    assert (root / ".cache" / "repro-build" / "CACHEDIR.TAG").is_file()
    assert (root / ".config" / "repro-build" / "cache-key").is_file()
    assert _status(root) == ""
    second = _ok(_cli(root, env, "image", "-q"))
    assert first == second and first.startswith("sha256:")
    _ok(_cli(root, env, "wheel"))
    assert (root / "dist" / ".gitignore").read_text() == OUTPUT_GITIGNORE
    assert (root / "build" / ".gitignore").read_text() == OUTPUT_GITIGNORE
    assert _status(root) == ""
    _ok(_cli(root, env, "wheel"))
    # A change of the user's is still a change: the check still works.
    (root / "notes.txt").write_text("not committed\n")
    out = _cli(root, env, "image", "-q")
    assert out.returncode == 2 and "notes.txt" in out.stderr and ".cache" not in out.stderr


def test_untracked_output_dirs_made_by_others_do_not_count(tmp_path: Path) -> None:
    """`dist/` from another tool (no .gitignore) and a cache whose .gitignore was removed: still not dirty."""
    root = _golden_in_git(tmp_path / "golden")
    (root / "dist").mkdir()
    (root / "dist" / "old-1.0.tar.gz").write_bytes(b"x")
    env = _env(root / "cache-home")
    _ok(_cli(root, env, "image", "-q"))
    (root / "cache-home" / "repro-build" / ".gitignore").unlink()
    (root / "build" / ".gitignore").unlink()
    assert "cache-home/repro-build/" in _status(root)
    _ok(_cli(root, env, "image", "-q"))
    # The manifest's `dirty` follows the same rule as the refusal.
    manifest = json.loads((root / "build" / "cpu" / "manifest.json").read_text())
    assert manifest["source"]["dirty"] is False
    (root / "notes.txt").write_text("not committed\n")
    _ok(_cli(root, env, "image", "-q", "--allow-dirty"))
    assert json.loads((root / "build" / "cpu" / "manifest.json").read_text())["source"]["dirty"] is True


def test_cache_on_another_file_system(tmp_path: Path, other_fs: Path) -> None:
    """Project on disk, cache on a tmpfs (and back): blobs cannot be hard-linked across, the digest is the same."""
    digests = []
    for i, (project_area, cache_area) in enumerate([(tmp_path, other_fs), (other_fs, tmp_path)]):
        root = _golden_in_git(project_area / f"golden{i}")
        out = _cli(root, _env(cache_area / f"cache{i}"), "image", "-q")
        digests.append(_ok(out))
    assert digests[0] == digests[1]


@pytest.mark.slow
def test_init_lock_commit_image_twice(tmp_path: Path, other_fs: Path) -> None:
    """A plain project, no .gitignore: init's own next steps, then `image` twice (Debian base, cache on tmpfs)."""
    root = plain_project(tmp_path / "plain")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    env = _env(other_fs)
    out = _cli(root, env, "init")
    _ok(out)
    assert NEXT_STEPS in out.stderr
    steps = re.findall(r"`([^`]+)`", NEXT_STEPS)
    assert steps[-1] == "nox -s build"  # needs repro-build from an index; `image` below is its core
    for step in steps[:-1]:
        subprocess.run(
            step.replace("repro-build", f"{sys.executable} -m reprobuild"),
            shell=True,
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
        )
    assert _status(root) == ""
    first = _ok(_cli(root, env, "image", "-q"))
    second = _ok(_cli(root, env, "image", "-q"))
    assert first == second
    assert _status(root) == ""
