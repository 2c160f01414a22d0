"""Versions from version control, for a build that runs on an export of the source.

setuptools-scm (and hatch-vcs, which uses it) derive the version from the git repository: the nearest
tag, the distance to it, the commit. The build runs on an export, so repro-build asks setuptools-scm
itself — the version the project locked in ``repro-locks/build.txt``, run with ``python -m setuptools_scm`` in
the project's real work tree, which reads ``[tool.setuptools_scm]`` — and hands the answer to the backend
through the variable the tool documents for this, ``SETUPTOOLS_SCM_PRETEND_VERSION``. The variable is part
of the recorded build environment, so the build record (and an image's manifest) names the version.

The export also carries git metadata of its own (:func:`commit_export`): one commit of exactly the
exported files, with a fixed author, committer and date (the epoch). Backends that ask git which files
belong to the project (setuptools-scm's file finder, poetry-core, pdm-backend) then see the files of the
commit, and meson's ``dist`` (meson-python's sdist) finds the repository it needs.

versioningit has no variable that hands it a version (its only variables are ``VERSIONINGIT_LOG_LEVEL``
and ``SOURCE_DATE_EPOCH``; outside a repository it reads an sdist's ``PKG-INFO``). It runs ``git describe
--long --dirty --always`` and ``git log`` itself, so for a project whose locked build requirements
include it the export gets the commit's own history instead (:func:`carry_history`): the commit and
every tag of the checkout, fetched from it, with the exported files as the work tree. ``git describe``
then gives the answer it gives in the checkout (tag, distance, abbreviated commit id, dirty or not), and
so does versioningit; the version depends on the commit and its tags only.
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
#: Distributions that ask git themselves and take no version from a variable (see module docstring).
HISTORY_DISTRIBUTIONS = frozenset({"versioningit"})


def uses_scm(distributions: set[str]) -> bool:
    """True when one of the (normalised) build distributions is an scm versioning plugin."""
    return bool(SCM_DISTRIBUTIONS & distributions)


def needs_history(distributions: set[str]) -> bool:
    """True when one of the (normalised) build distributions reads the version from git history itself."""
    return bool(HISTORY_DISTRIBUTIONS & distributions)


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


#: ``git init`` without a template: the export's ``.git`` holds only what git needs, not the sample hooks,
#: ``info/exclude`` and ``description`` of the template this host's git ships with, which a backend that
#: asks git about the files would otherwise see (and which cost files to write and remove each build).
_NO_TEMPLATE = ("--template=",)


def _git_env(dest: Path, epoch_seconds: int) -> dict[str, str]:
    stamp = f"@{epoch_seconds} +0000"
    return {
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


def _run_git(dest: Path, env: dict[str, str], args: list[str]) -> str:
    try:
        out = subprocess.run(["git", "-C", str(dest), *args], env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise ToolError("git is not installed", hint="install git") from e
    if out.returncode != 0:
        raise ToolError(f"`git {' '.join(args)}` in the export failed: {out.stderr.strip()}")
    return out.stdout.strip()


def commit_export(dest: Path, epoch_seconds: int) -> None:
    """Make the export ``dest`` a git repository with one commit of all its files (see module docstring)."""
    env = _git_env(dest, epoch_seconds)
    for args in (
        ["init", "-q", "-b", "main", *_NO_TEMPLATE],
        ["add", "-A", "-f"],
        ["commit", "-q", "--no-gpg-sign", "--no-verify", "--allow-empty", "-m", "repro-build export"],
    ):
        _run_git(dest, env, args)


def carry_history(dest: Path, checkout: Path, commit: str, epoch_seconds: int) -> None:
    """Make the export ``dest`` a git repository at ``commit`` with its history and every tag of the git
    work tree ``checkout`` (fetched, not linked, so a builder container sees it), the exported files
    as its work tree and a detached ``HEAD`` (see module docstring)."""
    prefix = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--show-prefix"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if prefix:
        raise WheelError(
            f"the project is in {prefix!r} of its git repository, and versioningit derives the version from "
            "git itself; repro-build can give it the commit's history only for a project at the top of its "
            "repository",
            hint="build from a repository whose top is the project, or set "
            "`[tool.versioningit] default-version` and build outside git",
        )
    env = _git_env(dest, epoch_seconds)
    _run_git(dest, env, ["init", "-q", *_NO_TEMPLATE])
    _run_git(dest, env, ["fetch", "-q", "--no-tags", str(checkout), "+HEAD:refs/repro-build/commit"])
    _run_git(dest, env, ["fetch", "-q", str(checkout), "+refs/tags/*:refs/tags/*"])
    fetched = _run_git(dest, env, ["rev-parse", "refs/repro-build/commit"])
    if fetched != commit:
        raise WheelError(f"{checkout} moved to {fetched[:12]} while {commit[:12]} was being built", hint="build again")
    _run_git(dest, env, ["update-ref", "-d", "refs/repro-build/commit"])
    _run_git(dest, env, ["update-ref", "--no-deref", "HEAD", commit])
    _run_git(dest, env, ["read-tree", commit])
