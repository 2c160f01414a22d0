"""What uv learnt about the host's interpreter, kept between installs, sealed.

Every ``uv pip install`` into an image's staging tree runs with a cache of its own that is deleted
afterwards (what ``--no-cache`` does), so that nothing installed comes from a cache no digest checks.
Such a fresh cache also makes uv start the interpreter to ask about it (its version, paths and
platform: a Python process, 0.05-0.1 s) on every install, the project wheel's after each code change
included. uv files that answer under ``interpreter-vN/`` of its cache and trusts it while the
interpreter's executable is unchanged.

So the answer is kept: after an install, the files uv wrote under ``interpreter-v*/`` are stored as one
entry sealed with this machine's cache key (:mod:`reprobuild.cachekey`), keyed by uv's version and the
interpreter's path and status; before the next install they are put into its fresh cache, once the seal
verifies and each name is one uv gives such a file. An entry that does not verify is removed and uv asks
the interpreter again. Nothing else of uv's cache is kept: the wheels are unpacked into the fresh cache
as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from pathlib import Path

from reprobuild.cache import cache_root
from reprobuild.cachekey import UnsealedEntry, read_sealed, write_sealed
from reprobuild.uvbin import uv_version

#: The names uv gives its interpreter records (``interpreter-v5/<hash>/<hash>.msgpack`` for uv 0.13).
_RECORD = re.compile(r"interpreter-v[0-9]{1,3}(?:/[0-9a-f]{1,64}){1,2}\.msgpack")
_MAX_ENTRY = 1 << 20

_log = logging.getLogger(__name__)


def _entry_path(python: Path) -> Path | None:
    """Where the entry for ``python`` lives; ``None`` when the interpreter cannot be stat'ed."""
    try:
        st = python.stat()
    except OSError:
        return None
    facts = {"uv": uv_version(), "python": str(python), "stat": [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]}
    key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    return cache_root() / "uvinterpreter" / f"{key}.json"


def restore(python: Path, uv_cache: Path) -> dict[str, bytes]:
    """Put the sealed records of ``python`` into the fresh ``uv_cache``; return them (empty: none usable)."""
    path = _entry_path(python)
    if path is None:
        return {}
    try:
        payload = read_sealed(path, max_bytes=_MAX_ENTRY, key=path.stem)
    except UnsealedEntry as e:
        _log.debug("uv's interpreter record %s is not usable (%s); removing it", path, e)
        path.unlink(missing_ok=True)
        return {}
    files = payload.get("files") if payload is not None else None
    if not isinstance(files, dict):
        return {}
    decoded: dict[str, bytes] = {}
    for name, data in files.items():
        if not (isinstance(name, str) and _RECORD.fullmatch(name) and isinstance(data, str)):
            return {}
        try:
            decoded[name] = base64.b64decode(data, validate=True)
        except binascii.Error:
            return {}
    for name, data in decoded.items():
        dest = uv_cache / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    return decoded


def remember(python: Path, uv_cache: Path, restored: dict[str, bytes]) -> None:
    """Seal the interpreter records uv left in ``uv_cache`` for the next install, unless they are the
    ``restored`` ones (nothing is written without a cache key)."""
    path = _entry_path(python)
    if path is None:
        return
    files: dict[str, bytes] = {}
    for record in sorted(uv_cache.glob("interpreter-v*/**/*.msgpack")):
        name = record.relative_to(uv_cache).as_posix()
        if _RECORD.fullmatch(name) and record.is_file() and not record.is_symlink():
            files[name] = record.read_bytes()
    if files and files != restored and sum(len(v) for v in files.values()) < _MAX_ENTRY // 2:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_sealed(path, {"key": path.stem, "files": {k: base64.b64encode(v).decode() for k, v in files.items()}})


__all__ = ["remember", "restore"]
