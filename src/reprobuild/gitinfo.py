"""What the image labels and the build manifest say about the source: commit, dirty flag, remote."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from reprobuild.urls import redact, repository_url


@dataclass(frozen=True)
class SourceInfo:
    """The git state of a project directory (all None outside git)."""

    commit: str | None
    dirty: bool | None
    remote: str | None

    def recorded_remote(self) -> str | None:
        """The remote as the manifest records it: only a network URL, never a host path.

        A local path or ``file://`` remote names a directory of the machine that built, which means
        nothing to a verifier elsewhere (and differs between two clones of one commit).
        """
        return self.remote if self.remote and repository_url(self.remote) is not None else None


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
    remote = _git(root, "remote", "get-url", "origin")
    return SourceInfo(commit, _dirty(root), redact(remote) if remote else None)


def _dirty(root: Path) -> bool | None:
    """The wheel snapshot's rule: uncommitted changes, not counting repro-build's own directories."""
    from reprobuild.errors import ToolError
    from reprobuild.wheel.source import dirty_paths, own_dirs

    resolved = root.resolve()
    try:
        return bool(dirty_paths(resolved, own_dirs(resolved)))
    except ToolError:
        return None
