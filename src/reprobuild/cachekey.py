"""A key from outside the cache, to tell entries this machine wrote from entries someone else wrote.

Some cache entries cannot be re-derived cheaply from their inputs: the Debian base (reading the
``.deb`` files costs most of building it) and the facts found in a base. Such an entry is sealed with
an HMAC-SHA256 whose key never lives in the cache directory: ``$REPRO_BUILD_CACHE_KEY`` when set (a CI
secret, so that a cache restored from CI stays usable), else ``$XDG_CONFIG_HOME/repro-build/cache-key``
(``~/.config/...``), 32 random bytes created with mode 0600 on first use. An entry whose tag does not
verify (restored from elsewhere, edited, or from another key) is evicted and rebuilt, never used.

A sealed entry is a JSON file ``{"hmac": <tag>, "payload": <object>}``, the tag over the payload's
canonical JSON: :func:`write_sealed` writes one and :func:`read_sealed` reads one back, for every cache
that keeps such entries.

What this does not protect against: whoever can read the key (the same user, or the CI secret's
readers) can forge entries. ``verify`` therefore reads none of these sealed entries: it rebuilds the
base and inspects it anew (see the threat model in the docs).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reprobuild.fsutil import atomic_write_text, canonical_json_bytes

KEY_ENV = "REPRO_BUILD_CACHE_KEY"


def key_path() -> Path:
    """Where the machine's cache key is kept when ``$REPRO_BUILD_CACHE_KEY`` is not set."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "repro-build" / "cache-key"


def _key() -> bytes | None:
    """The key, or ``None`` when none can be read or made (then nothing sealed is ever trusted)."""
    explicit = os.environ.get(KEY_ENV)
    if explicit:
        return explicit.encode()
    path = key_path()
    try:
        return path.read_bytes() or None
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        _make_key_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    except FileExistsError:
        pass  # another process created it first; read theirs
    except OSError:
        return None
    try:
        return path.read_bytes() or None
    except OSError:
        return None


def _make_key_dir(directory: Path) -> None:
    """The key's directory, with a ``.gitignore`` of ``*``: a HOME inside a work tree (reprotest's
    ``home`` variation) must not show the key as an uncommitted file."""
    directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Created by repro-build: its cache key, never committed.\n*\n", encoding="utf-8")


def seal(data: bytes) -> str | None:
    """The hex HMAC-SHA256 of ``data`` under this machine's cache key (``None`` without a key)."""
    key = _key()
    return hmac.new(key, data, hashlib.sha256).hexdigest() if key else None


def sealed_by_us(data: bytes, tag: object) -> bool:
    """True when ``tag`` is :func:`seal` of ``data`` (constant-time comparison)."""
    expected = seal(data)
    return expected is not None and isinstance(tag, str) and hmac.compare_digest(expected, tag)


class UnsealedEntry(ValueError):
    """A sealed entry that is there but may not be used: unreadable, not an entry, written for other
    inputs, or not sealed by this machine's key. Never shown to a user: the cache evicts the entry (with a
    warning) and derives what it held anew."""


def write_sealed(path: Path, payload: Mapping[str, Any]) -> bool:
    """Write ``payload`` to ``path`` as an entry sealed with this machine's cache key (atomically);
    False, and nothing written, when there is no key."""
    tag = seal(canonical_json_bytes(payload))
    if tag is None:
        return False
    atomic_write_text(path, json.dumps({"hmac": tag, "payload": payload}, sort_keys=True))
    return True


def read_sealed(path: Path, *, max_bytes: int | None = None, **expect: object) -> dict[str, Any] | None:
    """The payload of the entry :func:`write_sealed` wrote at ``path``; None when there is no file.

    ``expect``: the fields the payload must hold with exactly these values (the inputs it was written
    for, e.g. ``key=…``). Raises :class:`UnsealedEntry` for an entry that exists but is a symbolic link
    (never followed), is unreadable, larger than ``max_bytes``, is not an entry (``{"hmac", "payload"}``
    and nothing else), holds other values for ``expect``, or whose tag does not verify.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsealedEntry("it is a symbolic link") from e
        raise UnsealedEntry(f"it cannot be read: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except OSError as e:  # a directory
        raise UnsealedEntry(f"it cannot be read: {e.strerror or e}") from e
    if max_bytes is not None and len(data) > max_bytes:
        raise UnsealedEntry(f"it is over {max_bytes} bytes")
    try:
        entry = json.loads(data.decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise UnsealedEntry(f"it is not JSON ({e})") from e
    if not isinstance(entry, dict) or set(entry) != {"hmac", "payload"} or not isinstance(entry["payload"], dict):
        raise UnsealedEntry('it is not a sealed entry ({"hmac", "payload"} and nothing else)')
    payload: dict[str, Any] = entry["payload"]
    for name, value in expect.items():
        found = payload.get(name)
        if found != value or type(found) is not type(value):
            raise UnsealedEntry(f"payload.{name} is {found!r}, not {value!r}")
    if not sealed_by_us(canonical_json_bytes(payload), entry["hmac"]):
        raise UnsealedEntry("it is not sealed by this machine's cache key")
    return payload
