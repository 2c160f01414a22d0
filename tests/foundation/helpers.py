"""Small builders of throwaway projects for the foundation tests."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

BASIC_PROJECT = """\
[project]
name = "demo"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["idna==3.10"]

[project.optional-dependencies]
extra = ["six==1.17.0"]

[dependency-groups]
tools = ["packaging==24.2"]
more = [{ include-group = "tools" }]

[build-system]
requires = ["hatchling==1.33.0"]
build-backend = "hatchling.build"
"""


def write_project(root: Path, pyproject: str = BASIC_PROJECT, tool: str = "", dockerfile: str | None = None) -> Path:
    """Write ``pyproject.toml`` (plus an optional ``[tool.repro-build]`` part and Dockerfile.base)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(textwrap.dedent(pyproject) + textwrap.dedent(tool))
    if dockerfile is not None:
        (root / "Dockerfile.base").write_text(textwrap.dedent(dockerfile))
    return root


def git_commit(root: Path, when: int = 1700000000) -> None:
    """``git init`` + commit everything with fixed author and committer dates."""
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_AUTHOR_DATE": f"{when} +0000",
        "GIT_COMMITTER_DATE": f"{when} +0000",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-q", "-m", "init"], check=True, env=env)
