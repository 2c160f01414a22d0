"""The CLI run as a separate process, for hostile manifests and caches (``built_golden``: tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys

CLI = (sys.executable, "-m", "reprobuild")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, env={**os.environ, **(env or {})})
