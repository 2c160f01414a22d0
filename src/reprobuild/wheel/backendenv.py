"""A cached environment holding the project's build backend, installed from ``repro-locks/build.txt``.

``uv build`` creates a fresh isolated environment for every build and installs the backend into it
(about a second on a small machine, most of a one-line change's rebuild). The image command instead
keeps one environment per *build lock and Python request*: ``<cache>/buildenvs/<key>/``, where ``key`` is
the sha256 of the lock's bytes, the Python request (``tool.repro-build.python``), uv's version and
repro-build's version. It is created by uv exactly as the backend environment of :mod:`reprobuild.pep517`
(``uv venv`` then ``uv pip install --require-hashes -r repro-locks/build.txt``: every distribution checked
against the lock's hashes), with the byte-code of its modules compiled once, so that each build's
backend process starts from ``.pyc`` files, and with its files copied rather than linked from uv's cache,
so that nothing done to the environment reaches uv's cache.

Nothing in it is trusted because it is in the cache. When it is created, every file and link in it is
listed with its sha256 (``buildenvs/<key>.json``), and that list is sealed with the machine's cache key
(:mod:`reprobuild.cachekey`, an HMAC whose key lives outside the cache). Before each use, the list's seal
is checked and every file is hashed again and compared; an entry that is missing, unsealed, sealed with
another key, for another key, or whose files differ by one byte (an added, removed or edited file) is
removed with a ``warning:`` line and created again. ``verify`` never uses these environments: it builds
with ``uv build`` as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reprobuild.cache import prepare_cache_root
from reprobuild.cachekey import UnsealedEntry, read_sealed, write_sealed
from reprobuild.fsutil import canonical_json_bytes, exclusive_lock
from reprobuild.uvbin import uv_version

log = logging.getLogger(__name__)

#: The directory under the cache root that holds the environments and their sealed file lists.
ENVS_DIR = "buildenvs"
#: Bumped when the layout of an environment or of its list changes.
FORMAT = 1


@dataclass(frozen=True)
class BackendEnv:
    """A verified environment: ``root`` (a virtual environment) with the lock's distributions installed."""

    root: Path

    @property
    def interpreter(self) -> Path:
        return self.root / "bin" / "python"


def env_key(lock: bytes, python: str, *, uv: str | None = None) -> str:
    """The hex key of the environment for a build lock's bytes and a Python request."""
    from reprobuild import __version__

    inputs = {
        "format": FORMAT,
        "lock_sha256": hashlib.sha256(lock).hexdigest(),
        "python": python,
        "uv": uv or uv_version(),
        "repro_build": __version__,
    }
    return hashlib.sha256(canonical_json_bytes(inputs)).hexdigest()


def tree_listing(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (relative POSIX paths) -> ``file:<mode>:<sha256>``, ``link:<target>`` or
    ``dir``. Anything else (a socket, a device) is listed as ``other`` and so never matches a listing
    that was sealed. Links are listed, never followed."""
    out: dict[str, str] = {}
    top = str(root)
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, top)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)  # noqa: PTH118 (str paths, on the hot path)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[prefix + name] = "link:" + os.readlink(path)  # noqa: PTH115 (a str path, on the hot path)
            elif stat.S_ISDIR(st.st_mode):
                out[prefix + name] = "dir"
            elif stat.S_ISREG(st.st_mode):
                out[prefix + name] = f"file:{st.st_mode & 0o777:o}:{_sha256(path)}"
            else:
                out[prefix + name] = "other"
    return out


def _sha256(path: str) -> str:
    with open(path, "rb") as f:  # noqa: PTH123 (a str path, on the hot path)
        return hashlib.file_digest(f, "sha256").hexdigest()


def _payload(key: str, listing: dict[str, str]) -> dict[str, object]:
    return {"format": FORMAT, "key": key, "files": listing}


def _entry_problem(root: Path, record: Path, key: str) -> str | None:
    """Why the environment at ``root`` may not be used (``None``: it may)."""
    try:
        payload = read_sealed(record, key=key, format=FORMAT)
    except UnsealedEntry as e:
        return f"its file list: {e}"
    if payload is None:
        return "no sealed file list"
    try:
        listing = tree_listing(root)
    except OSError as e:
        return f"unreadable ({e})"
    recorded = payload.get("files")
    if listing != recorded:
        changed = sorted(set(listing.items()) ^ set(recorded.items() if isinstance(recorded, dict) else ()))
        first = changed[0][0] if changed else "?"
        return f"its files differ from the sealed list ({len(changed)} differences, first {first})"
    return None


def _create(root: Path, python: str, lock: Path, *, offline: bool) -> None:
    from reprobuild.pep517 import create_venv, install_into, uv_env

    env = uv_env(offline=offline)
    create_venv(root, python, env, what=f"creating the build backend's environment (Python {python})")
    install_into(
        root / "bin" / "python",
        [
            "--require-hashes",
            "--compile-bytecode",
            # Copies, not links into uv's cache: an edit to this environment must not reach uv's cache
            # (and, through it, every other environment uv fills from it).
            "--link-mode",
            "copy",
            "-r",
            str(lock),
        ],
        env,
        what=f"installing {lock.name} into the build backend's environment",
    )


def _remove(root: Path, record: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        record.unlink()
    shutil.rmtree(root, ignore_errors=True)


def backend_env(
    lock: Path, python: str, *, offline: bool = False, on_create: Callable[[], None] | None = None
) -> BackendEnv:
    """The verified environment for ``lock`` and ``python``, created (or created again) when needed.

    ``offline``: a new environment takes the distributions from uv's cache only; ``on_create`` is called
    before one is created."""
    cache = prepare_cache_root() / ENVS_DIR
    key = env_key(lock.read_bytes(), python)
    root, record = cache / key, cache / f"{key}.json"
    if root.is_dir() and _entry_problem(root, record, key) is None:
        return BackendEnv(root)
    with exclusive_lock(cache / f"{key}.lock"):
        # Another build may have created it while this one waited.
        problem = _entry_problem(root, record, key) if root.is_dir() or record.exists() else None
        if problem is None and root.is_dir():
            return BackendEnv(root)
        if problem is not None:
            log.warning("warning: build backend environment %s in the cache: %s; creating it again", key[:12], problem)
        _remove(root, record)
        if on_create is not None:
            on_create()
        try:
            _create(root, python, lock, offline=offline)
            payload = _payload(key, tree_listing(root))
        except BaseException:
            _remove(root, record)
            raise
        # Without a cache key nothing is sealed: the environment is used this once and created again next time.
        write_sealed(record, payload)
    return BackendEnv(root)


__all__ = ["ENVS_DIR", "BackendEnv", "backend_env", "env_key", "tree_listing"]
