"""Versions from version control, for a build that runs on an export of the source.

setuptools-scm (and hatch-vcs, which uses it) derive the version from the git repository: the nearest
tag, the distance to it, the commit. The build runs on an export, so repro-build asks setuptools-scm
itself — the version the project locked in ``locks/build.txt``, run with ``python -m setuptools_scm`` in
the project's real work tree, which reads ``[tool.setuptools_scm]`` — and hands the answer to the backend
through the variable the tool documents for this, ``SETUPTOOLS_SCM_PRETEND_VERSION``. The variable is part
of the recorded build environment, so the build record (and an image's manifest) names the version.

The export also carries git metadata of its own (:func:`commit_export`): one commit of exactly the
exported files, with a fixed author, committer and date (the epoch). Backends that ask git which files
belong to the project (setuptools-scm's file finder, poetry-core, pdm-backend) then see the files of the
commit, and meson's ``dist`` (meson-python's sdist) finds the repository it needs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from reprobuild.errors import ToolError, WheelError

#: The variable setuptools-scm (and hatch-vcs through it) reads instead of asking git.
PRETEND_VERSION = "SETUPTOOLS_SCM_PRETEND_VERSION"
#: Distributions whose presence in the build environment means the version may come from git.
SCM_DISTRIBUTIONS = frozenset({"setuptools-scm", "hatch-vcs"})


def uses_scm(distributions: set[str]) -> bool:
    """True when one of the (normalised) build distributions is an scm versioning plugin."""
    return bool(SCM_DISTRIBUTIONS & distributions)


def scm_version(interpreter: Path, root: Path) -> str:
    """The version setuptools-scm derives for the git work tree ``root``, run by ``interpreter`` (the
    Python of the environment that holds the project's locked setuptools-scm)."""
    out = subprocess.run(
        [str(interpreter), "-m", "setuptools_scm"],
        cwd=root,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"), "TZ": "UTC", "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        check=False,
    )
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise WheelError(
            f"setuptools-scm could not derive a version for {root}:\n{(out.stderr or out.stdout).strip()[-1500:]}",
            hint="tag a commit (`git tag v1.0.0`) or check `[tool.setuptools_scm]`",
        )
    return lines[-1].strip()


def scm_environment(version: str | None) -> dict[str, str]:
    """The variables that hand ``version`` to setuptools-scm/hatch-vcs (empty when there is none)."""
    return {PRETEND_VERSION: version} if version else {}


def commit_export(dest: Path, epoch_seconds: int) -> None:
    """Make the export ``dest`` a git repository with one commit of all its files (see module docstring)."""
    stamp = f"@{epoch_seconds} +0000"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(dest),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "repro-build",
        "GIT_AUTHOR_EMAIL": "repro-build@localhost",
        "GIT_COMMITTER_NAME": "repro-build",
        "GIT_COMMITTER_EMAIL": "repro-build@localhost",
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
        "TZ": "UTC",
        "LC_ALL": "C",
    }
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A", "-f"],
        ["commit", "-q", "--no-gpg-sign", "--no-verify", "--allow-empty", "-m", "repro-build export"],
    ):
        try:
            out = subprocess.run(["git", "-C", str(dest), *args], env=env, capture_output=True, text=True, check=False)
        except FileNotFoundError as e:
            raise ToolError("git is not installed", hint="install git") from e
        if out.returncode != 0:
            raise ToolError(f"`git {' '.join(args)}` in the export failed: {out.stderr.strip()}")
