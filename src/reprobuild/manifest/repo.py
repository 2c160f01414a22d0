"""Where ``verify`` finds the commit a build manifest records.

With ``--repo``: an existing directory is a local repository (work tree or bare) used as it is;
anything else is a git URL (``https://``, ``ssh://``, ``git@host:org/app.git``, ``file://``), cloned
into a temporary directory for the rebuild. Without it, the candidates are tried in order, and the
first that holds the commit wins:

1. the git repository holding the manifest file;
2. the git repository of the current directory (``verify ../manifest.json`` from a fresh clone);
3. a clone of the remote the manifest records (``source.remote``).

When none holds the commit the error lists every candidate and why it did not serve.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reprobuild.errors import ManifestError
from reprobuild.manifest.validate import is_commit_id
from reprobuild.urls import redact, redact_text

#: Remote forms a manifest may name (it is data, so no ``ext::`` transport, no option-like text):
#: URLs of the transports git calls safe, and the scp-like ``[user@]host:path``.
_URL_RE = re.compile(r"(?:https?|ssh|git|file)://[^\s]+")
_SCP_RE = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9._-]*@)?[A-Za-z0-9][A-Za-z0-9.-]*:(?!//|:)[^\s]+")


class RepositoryError(ManifestError):
    """No repository at hand holds the commit a manifest records."""


@dataclass(frozen=True)
class _Tried:
    what: str
    outcome: str


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # Never prompt for credentials: a clone that needs them fails with git's message instead.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(
        ["git", "-c", "protocol.ext.allow=never", *args], capture_output=True, text=True, check=False, cwd=cwd, env=env
    )


def local_repository(path: Path) -> Path | None:
    """The repository ``path`` is in (its work tree's top, or the directory of a bare repository)."""
    if not path.is_dir():
        return None
    top = _git("-C", str(path), "rev-parse", "--show-toplevel")
    if top.returncode == 0 and top.stdout.strip():
        return Path(top.stdout.strip())
    bare = _git("-C", str(path), "rev-parse", "--absolute-git-dir")
    if bare.returncode == 0 and bare.stdout.strip():
        return Path(bare.stdout.strip())
    return None


def has_commit(repo: Path, commit: str) -> bool:
    return _git("-C", str(repo), "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


def is_remote_url(text: str) -> bool:
    """Whether ``text`` is a git URL ``verify`` may clone (not an option, not a custom transport)."""
    return bool(_URL_RE.fullmatch(text) or _SCP_RE.fullmatch(text))


def _clone(url: str, dest: Path, commit: str) -> str | None:
    """Clone ``url`` bare into ``dest`` and make sure ``commit`` is there; None, or why not."""
    out = _git("clone", "-q", "--bare", "--", url, str(dest))
    if out.returncode != 0:
        lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
        return f"cloning failed: {redact_text(lines[-1] if lines else f'git exited {out.returncode}')}"
    if has_commit(dest, commit):
        return None
    # Not on any branch or tag: servers that allow it (uploadpack.allowReachableSHA1InWant) give it by name.
    _git("-C", str(dest), "fetch", "-q", "origin", commit)
    return None if has_commit(dest, commit) else "cloned, but the commit is not in it"


@contextlib.contextmanager
def repository_for(
    manifest: Path,
    commit: str,
    *,
    repo: str | None = None,
    remote: str | None = None,
    cwd: Path | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> Iterator[Path]:
    """A git repository holding ``commit``; a clone lives as long as the context. See the module docstring."""
    if not is_commit_id(commit):
        raise RepositoryError(
            f"{manifest}: the recorded commit {commit!r} is not a full git commit name",
            hint="verify a manifest written by `repro-build image`",
        )
    tried: list[_Tried] = []
    if repo is not None:
        candidates = [("--repo", repo)]
    else:
        candidates = [
            ("the repository holding the manifest", str(manifest.resolve().parent)),
            ("the current directory's repository", str((cwd or Path.cwd()).resolve())),
        ]
    seen: set[Path] = set()
    for label, where in candidates:
        local = local_repository(Path(where))
        if local is not None:
            if local in seen:
                continue
            seen.add(local)
            if has_commit(local, commit):
                yield local
                return
            tried.append(_Tried(f"{label}, {local}", "the commit is not in it"))
            continue
        if repo is None or not is_remote_url(where):
            tried.append(_Tried(f"{label}, {where}", "not a git repository"))
            continue
        with _cloned(label, where, commit, tried, log) as cloned:
            if cloned is not None:
                yield cloned
                return
    if repo is None:
        if not remote:
            tried.append(_Tried("the remote recorded in the manifest", "the manifest records none"))
        elif not is_remote_url(remote):
            tried.append(_Tried(f"the remote recorded in the manifest, {redact(remote)}", "not a git URL"))
        else:
            with _cloned("the remote recorded in the manifest", remote, commit, tried, log) as cloned:
                if cloned is not None:
                    yield cloned
                    return
    lines = "\n".join(f"  {t.what}: {t.outcome}" for t in tried)
    raise RepositoryError(
        f"commit {commit} of {manifest} was found in no repository; tried:\n{lines}",
        hint="pass `--repo PATH` (a clone that holds the commit) or `--repo URL` (cloned for the rebuild), "
        "or run verify inside a clone of the project",
    )


@contextlib.contextmanager
def _cloned(
    label: str, url: str, commit: str, tried: list[_Tried], log: Callable[[str], None]
) -> Iterator[Path | None]:
    with tempfile.TemporaryDirectory(prefix="repro-build-clone-") as tmp:
        log(f"cloning {redact(url)} ({label})")
        dest = Path(tmp) / "repo.git"
        why = _clone(url, dest, commit)
        if why is not None:
            tried.append(_Tried(f"{label}, {redact(url)}", why))
            yield None
        else:
            yield dest
