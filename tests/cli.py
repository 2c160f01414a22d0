"""The repro-build CLI run as a separate process, as a user runs it (exit code, stdout and stderr)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = (sys.executable, "-m", "reprobuild")


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``repro-build ARGS`` with this environment plus ``env``, in ``cwd``."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}, cwd=cwd
    )
