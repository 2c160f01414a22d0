"""The only reader of ``SOURCE_DATE_EPOCH`` and of the git commit time.

Spec: https://reproducible-builds.org/specs/source-date-epoch/ (revision 1.1: integer seconds since
1970-01-01 UTC; timestamps newer than it are *clamped* to it).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reprobuild.errors import ConfigError, ToolError

#: ZIP stores DOS times, which start at 1980-01-01 00:00:00 UTC; earlier epochs are floored to this.
ZIP_EPOCH_FLOOR = 315532800

EpochSource = Literal["env", "config", "git"]


@dataclass(frozen=True)
class Epoch:
    """A validated ``SOURCE_DATE_EPOCH`` and where it came from."""

    seconds: int
    source: EpochSource

    @property
    def zip_seconds(self) -> int:
        """The epoch as ZIP can store it: never before 1980-01-01 (``max(315532800, SDE)``)."""
        return max(ZIP_EPOCH_FLOOR, self.seconds)

    def clamp(self, mtime: float) -> int:
        """Clamp a file mtime to the epoch (never newer), as SOURCE_DATE_EPOCH 1.1 asks."""
        return min(int(mtime), self.seconds)


def parse_epoch(value: str, origin: str) -> int:
    """Parse an epoch string strictly: decimal digits only, no sign, no fraction."""
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        raise ConfigError(
            f"{origin} must be a whole number of seconds since 1970-01-01 UTC, got {value!r}",
            hint="use e.g. `SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)`",
        )
    return int(text)


def git_commit_time(repo: Path, rev: str = "HEAD") -> int:
    """Committer time of ``rev`` in ``repo`` (seconds since the epoch)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "log", "-1", "--format=%ct", rev],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as e:
        raise ToolError(
            "git is not installed, so the source date cannot be taken from the last commit",
            hint="install git, or set `source-date-epoch = <seconds>` in `[tool.repro-build]`",
        ) from e
    if out.returncode != 0 or not out.stdout.strip():
        raise ConfigError(
            f"{repo} is not a git repository with a commit, so the source date cannot be taken from git",
            hint="commit the project, set `SOURCE_DATE_EPOCH`, or set "
            "`source-date-epoch = <seconds>` in `[tool.repro-build]`",
        )
    return int(out.stdout.strip())


def resolve_epoch(policy: str | int, project_dir: Path, environ: dict[str, str] | None = None) -> Epoch:
    """Resolve the build epoch.

    Order: an explicit ``SOURCE_DATE_EPOCH`` in the environment wins (the convention every build
    tool follows); then the config policy: an integer, or ``"git"`` for the HEAD committer time.
    """
    env = os.environ if environ is None else environ
    raw = env.get("SOURCE_DATE_EPOCH", "")
    if raw.strip():
        return Epoch(parse_epoch(raw, "the SOURCE_DATE_EPOCH environment variable"), "env")
    if isinstance(policy, int):
        return Epoch(policy, "config")
    return Epoch(git_commit_time(project_dir), "git")
