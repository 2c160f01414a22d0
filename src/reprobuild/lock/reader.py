"""Reading ``repro-locks/<target>.txt``: each pinned distribution with the hashes it may have."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from reprobuild.errors import LockError
from reprobuild.oci.digest import SHA256_HEX_RE

_PIN_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;\\]+)")
#: How a lock line pins a file's sha256 (pip's hash-checking mode); the hex is checked as a digest's.
_HASH = "--hash=sha256:"


@dataclass(frozen=True)
class LockedPackage:
    """One ``name==version`` line of a lock and its allowed sha256 hashes (hex)."""

    name: NormalizedName
    version: str
    hashes: frozenset[str]


def _logical_lines(text: str) -> list[str]:
    out: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            if buf:
                out.append(buf)
                buf = ""
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append(buf + line)
        buf = ""
    if buf:
        out.append(buf)
    return out


def read_lock(path: Path) -> dict[NormalizedName, LockedPackage]:
    """Parse a lock written by ``repro-build lock``; every pin must carry at least one hash."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise LockError(f"{path} does not exist", hint="run `repro-build lock`") from e
    packages: dict[NormalizedName, LockedPackage] = {}
    for line in _logical_lines(text):
        m = _PIN_RE.match(line.strip())
        if not m:
            raise LockError(
                f"{path}: cannot read {line.strip()[:80]!r}",
                hint="regenerate the lock with `repro-build lock`",
            )
        hashes = frozenset(
            word.removeprefix(_HASH)
            for word in line.split()
            if word.startswith(_HASH) and SHA256_HEX_RE.match(word.removeprefix(_HASH))
        )
        name = canonicalize_name(m.group("name"))
        if not hashes:
            raise LockError(f"{path}: {name}=={m.group('version')} has no hash", hint="run `repro-build lock`")
        packages[name] = LockedPackage(name, m.group("version"), hashes)
    return packages
