"""Where every locked wheel came from: recorded by ``lock``, used by ``image`` and ``verify``.

``repro-build lock`` asks uv, for each target, which file of each pinned version the target installs
(the selection ``image`` makes, :func:`reprobuild.image.wheels.select_wheels`) and where uv found
it (``--emit-index-annotation``, ``--emit-find-links``), and records both in ``repro-locks/inputs.json``
under the target's lock::

    {"filename", "name", "version", "sha256", "size", "source"}

``source`` says where the file is, never with credentials (:func:`reprobuild.urls.redact`):

``{"index": URL, "url": URL}``
    a package index (its URL as uv reports it) and the file's own URL;
``{"find-links": URL, "url": URL}``
    a remote find-links page and the file's URL;
``{"find-links": "wheels"}``
    a local find-links directory inside the project's git repository (or the project), written
    relative to the project root with ``/``: it means the same on every host and in ``verify``'s
    checkout;
``{"find-links": null}``
    a local directory outside the repository. Its path is a fact about this host, so it is not
    recorded: a build looks for the file in the wheel cache and in the directories of
    ``UV_FIND_LINKS``.

A build takes each file from the verified wheel cache by sha256 first, then from its recorded source,
then from the local directories in ``UV_FIND_LINKS``; only when all of those fail does it ask uv to
select the file again with this machine's index configuration. Every file is checked against the
lock's sha256 before it is used, wherever it came from.
"""

from __future__ import annotations

import os
import re
import subprocess
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename

from reprobuild.config import Config, Target
from reprobuild.errors import ReproBuildError
from reprobuild.image.wheels import WheelCache, WheelPin, pin_from_dict
from reprobuild.lock.inputs import file_sha256, read_inputs_file
from reprobuild.lock.reader import read_lock
from reprobuild.urls import redact, redact_text

#: A pin line of a lock (``name==version``) and uv's annotation under it (``    # from <index>``).
_PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==")
_FROM_RE = re.compile(r"^\s+# from (\S+)\s*$")
#: Schemes a recorded file URL may be fetched with (it is read from a committed file: data).
_FETCHABLE = ("https", "http")


@dataclass(frozen=True)
class RecordedWheel:
    """One wheel file a target installs and where ``lock`` found it."""

    pin: WheelPin
    source: dict[str, str | None]

    def to_dict(self) -> dict[str, Any]:
        return {**self.pin.to_dict(), "source": dict(sorted(self.source.items()))}


@dataclass(frozen=True)
class Origins:
    """Where uv found each package (``# from <index or find-links>``) and which locations were find-links."""

    by_package: dict[NormalizedName, str]
    find_links: frozenset[str]

    def kind(self, origin: str | None) -> str:
        """``find-links`` for a find-links location, else ``index``."""
        if origin is not None and origin.rstrip("/") in {f.rstrip("/") for f in self.find_links}:
            return "find-links"
        return "index"


def split_uv_annotations(body: str) -> tuple[str, Origins]:
    """``body`` without what ``--emit-index-annotation``/``--emit-find-links`` added, and what they said.

    Those lines name this host's find-links directories, so they never stay in a lock.
    """
    kept: list[str] = []
    origins: dict[NormalizedName, str] = {}
    find_links: set[str] = set()
    current: NormalizedName | None = None
    after_find_links = False
    for line in body.splitlines(keepends=True):
        if line.startswith("--find-links "):
            find_links.add(line.split(None, 1)[1].strip())
            after_find_links = True
            continue
        if after_find_links and not line.strip():
            after_find_links = False
            continue
        after_find_links = False
        pin = _PIN_RE.match(line)
        if pin:
            current = canonicalize_name(pin.group(1))
        found = _FROM_RE.match(line)
        if found and current is not None:
            origins[current] = found.group(1)
            continue
        kept.append(line)
    return "".join(kept), Origins(origins, frozenset(find_links))


def _repository_root(root: Path) -> Path:
    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False
    )
    return Path(out.stdout.strip()).resolve() if out.returncode == 0 and out.stdout.strip() else root.resolve()


def _local_path(url: str) -> Path | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "file":
        return None
    from urllib.request import url2pathname  # with http.client and ssl: only for a file URL

    return Path(url2pathname(parts.path))


def _source(config: Config, url: str, origin: str | None, origins: Origins, repo_root: Path) -> dict[str, str | None]:
    local = _local_path(url)
    if local is None:
        return {origins.kind(origin): redact(origin) if origin else None, "url": redact(url)}
    directory = local.parent.resolve()
    if not directory.is_relative_to(repo_root):
        return {"find-links": None}
    return {"find-links": Path(os.path.relpath(directory, config.root.resolve())).as_posix()}


def record_wheels(config: Config, selected: list[tuple[WheelPin, str]], origins: Origins) -> list[dict[str, Any]]:
    """The ``wheels`` record of a target lock: each selected file and its source (see the module docstring)."""
    repo_root = _repository_root(config.root)
    return [
        RecordedWheel(
            pin, _source(config, url, origins.by_package.get(canonicalize_name(pin.name)), origins, repo_root)
        ).to_dict()
        for pin, url in selected
    ]


def recorded_wheels(config: Config, target: Target, lock: Path) -> list[RecordedWheel] | None:
    """The files ``lock`` recorded for ``target``, or None when there is no usable record.

    A record is used only when it belongs to this very lock text (its sha256) and names exactly one
    file of every pinned version, with a hash the lock allows; otherwise (a lock made before sources
    were recorded, say) the build selects the files with uv, as it always did.
    """
    inputs = read_inputs_file(config)
    entry = (inputs or {}).get("locks", {}).get(lock.name) or {}
    records = entry.get("wheels")
    if not isinstance(records, list) or entry.get("sha256") != file_sha256(lock):
        return None
    locked = read_lock(lock)
    out: list[RecordedWheel] = []
    try:
        for record in records:
            pin = pin_from_dict(record)
            parse_wheel_filename(pin.filename)  # a file name, never a path
            source = {str(k): (None if v is None else str(v)) for k, v in dict(record.get("source") or {}).items()}
            package = locked.get(canonicalize_name(pin.name))
            if package is None or package.version != pin.version or pin.sha256 not in package.hashes:
                return None
            out.append(RecordedWheel(pin, source))
    except (KeyError, TypeError, ValueError):
        return None
    if {canonicalize_name(w.pin.name) for w in out} != set(locked) or len(out) != len(locked):
        return None
    return sorted(out, key=lambda w: canonicalize_name(w.pin.name))


def configured_find_links() -> list[Path]:
    """The local directories of ``UV_FIND_LINKS`` (comma-separated, as uv reads it)."""
    out: list[Path] = []
    for raw in os.environ.get("UV_FIND_LINKS", "").split(","):
        item = raw.strip()
        if not item:
            continue
        local = _local_path(item) if "://" in item else Path(item)
        if local is not None:
            out.append(local)
    return out


def obtain(
    wheel: RecordedWheel,
    cache: WheelCache,
    root: Path,
    fetch: Callable[[WheelPin, str], Path],
    tried: list[str],
) -> Path | None:
    """The verified file of ``wheel``: the cache, its recorded source, then ``UV_FIND_LINKS``; else None.

    Every place looked in, and why it did not serve, is appended to ``tried``.
    """
    pin = wheel.pin
    cached = cache.get(pin)
    if cached is not None:
        return cached
    tried.append(f"the wheel cache ({cache.store.path(cache.digest(pin))})")
    url = wheel.source.get("url")
    if url:
        if urllib.parse.urlsplit(url).scheme not in _FETCHABLE:
            tried.append(f"{url}: not an http(s) URL")
        else:
            try:
                return fetch(pin, url)
            except ReproBuildError as e:
                tried.append(f"{url}: {redact_text(e.message)}")
    directories: list[tuple[Path, str]] = []
    local = wheel.source.get("find-links")
    if "find-links" in wheel.source and local is None:
        tried.append("its find-links directory: outside the repository when locked, so the lock does not name it")
    if local is not None and "://" not in local:
        directories.append(((root / local).resolve(), f"the recorded find-links directory {local!r}"))
    directories += [(d, "UV_FIND_LINKS") for d in configured_find_links()]
    for directory, why in directories:
        path = directory / pin.filename
        if not path.is_file():
            tried.append(f"{directory} ({why}): no {pin.filename}")
            continue
        try:
            return fetch(pin, path.as_uri())
        except ReproBuildError as e:
            tried.append(f"{path}: {e.message}")
    return None
