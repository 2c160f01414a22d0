"""Fixture projects as real git repositories, locked with ``repro-build lock`` (real uv)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from reprobuild.config import Config, load_config
from reprobuild.lock.compile import lock_project

PACKAGES = Path(__file__).resolve().parent.parent / "packages"
#: Fixed author/committer date of the fixture commits (2024-01-02T03:04:05Z), so the epoch is known.
COMMIT_EPOCH = 1704164645

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "fixture",
    "GIT_AUTHOR_EMAIL": "fixture@example.invalid",
    "GIT_COMMITTER_NAME": "fixture",
    "GIT_COMMITTER_EMAIL": "fixture@example.invalid",
    "GIT_AUTHOR_DATE": f"@{COMMIT_EPOCH} +0000",
    "GIT_COMMITTER_DATE": f"@{COMMIT_EPOCH} +0000",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV}
    out = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True)
    return out.stdout


def commit_all(repo: Path, message: str = "fixture") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", message)


def make_repo(name: str, dest: Path, *, lock: bool = True) -> Config:
    """Copy ``tests/packages/<name>`` to ``dest``, ``git init`` + commit it, lock it and commit the lock."""
    shutil.copytree(PACKAGES / name, dest)
    git(dest, "init", "-q", "-b", "main")
    commit_all(dest, "initial")
    config = load_config(dest)
    if lock:
        lock_project(config)
        commit_all(dest, "lock")
    return load_config(dest)
