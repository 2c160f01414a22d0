"""What the image labels and the build manifest say about the source: commit, dirty flag, remote."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from repro_build.urls import redact


@dataclass(frozen=True)
class SourceInfo:
    """The git state of a project directory (all None outside git)."""

    commit: str | None
    dirty: bool | None
    remote: str | None

    def to_dict(self) -> dict[str, object]:
        return {"commit": self.commit, "dirty": self.dirty, "remote": self.remote}


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def source_info(root: Path) -> SourceInfo:
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return SourceInfo(None, None, None)
    status = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    remote = _git(root, "remote", "get-url", "origin")
    return SourceInfo(commit, bool(status), redact(remote) if remote else None)
