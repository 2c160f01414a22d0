"""The exact wheel files a target installs: chosen by uv, fetched once, verified against the lock.

uv picks the wheel of each locked version that fits the target (``uv pip compile --format pylock.toml``
with the target's ``--python-version``/``--python-platform``, fed the lock itself so nothing can move).
Each file is downloaded into the cache's blob store (``<cache>/blobs/sha256/<hex>``) and checked, while
streaming, against the hashes in ``repro-locks/<target>.txt``; installs then run, with no index, from a
per-build directory of links to those blobs named as the lock names the wheels. The build manifest records
every wheel's file name and sha256 (never its URL, which may carry credentials), so ``verify`` can
rebuild from the cache alone.
"""

from __future__ import annotations

import re
import tempfile
import tomllib
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from reprobuild.config import Target
from reprobuild.download import Failure
from reprobuild.errors import DigestMismatchError, ImageError, LockError
from reprobuild.lock.reader import read_lock
from reprobuild.oci.blobstore import cache_store
from reprobuild.oci.digest import SHA256_HEX_RE, Digest
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.uvbin import run_uv

#: A wheel file name has no directory part and no `..` (the characters PEP 427 names can hold).
_WHEEL_NAME = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._+!-]*\.whl\Z")
#: How wheel downloads word their errors.
_INDEX = Failure(
    source="the index",
    expected_by="the lock pins",
    mismatch_hint="the index served different bytes; nothing was cached. Retry, or check the index",
    slow_hint="check the network and the index configuration, or build with a warm cache",
)


@dataclass(frozen=True)
class WheelPin:
    """One wheel file: what the manifest records about it."""

    name: str
    version: str
    filename: str
    sha256: str  # hex
    size: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "name": self.name,
            "sha256": f"sha256:{self.sha256}",
            "size": self.size,
            "version": self.version,
        }


def select_wheels(root: Path, target: Target, lock: Path) -> list[tuple[WheelPin, str]]:
    """``(pin, url)`` for every package of ``lock``, as uv selects them for ``target``."""
    locked = read_lock(lock)
    with tempfile.TemporaryDirectory(prefix="repro-build-pylock-") as tmp:
        out = Path(tmp) / "pylock.toml"
        run_uv(
            [
                "pip",
                "compile",
                "--format",
                "pylock.toml",
                "--no-header",
                "--quiet",
                "--only-binary",
                ":all:",
                *target.uv_platform_args,
                "--output-file",
                str(out),
                str(lock),
            ],
            cwd=root,
            what=f"selecting the wheels of {lock.name} for {target.python_platform}",
        )
        data = tomllib.loads(out.read_text(encoding="utf-8"))
    result: list[tuple[WheelPin, str]] = []
    for package in data.get("packages", []):
        name = canonicalize_name(package["name"])
        wheels = package.get("wheels", [])
        if name not in locked:
            raise LockError(f"uv selected {name}, which is not in {lock}", hint="run `repro-build lock`")
        wheel = _best_wheel(wheels, target)
        if wheel is None:
            raise LockError(
                f"{lock}: {name}=={package['version']} has no wheel for {target.python_platform} "
                f"(Python {target.python})",
                hint="check the target's `manylinux` and `python`, then run `repro-build lock`",
            )
        sha = wheel.get("hashes", {}).get("sha256", "")
        if sha not in locked[name].hashes:
            raise DigestMismatchError(
                f"{wheel['url'].rsplit('/', 1)[-1]}: sha256 {sha} is not one of the hashes {lock} pins for {name}",
                hint="the index serves a different file than when the lock was made; re-lock to accept it",
            )
        filename = wheel.get("name") or wheel["url"].rsplit("/", 1)[-1].split("#", 1)[0]
        parse_wheel_filename(filename)  # rejects anything that is not a wheel name
        pin = WheelPin(str(name), str(package["version"]), filename, sha, wheel.get("size"))
        result.append((pin, str(wheel["url"])))
    missing = set(locked) - {canonicalize_name(p.name) for p, _ in result}
    if missing:
        raise LockError(f"uv selected no wheel for {', '.join(sorted(missing))} from {lock}")
    return sorted(result, key=lambda pu: canonicalize_name(pu[0].name))


_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def target_tags(target: Target) -> list[Tag]:
    """Wheel tags the target accepts, most preferred first (as an installer on that platform ranks them)."""
    arch = target.python_platform.split("-", 1)[0]
    glibc_minor = int(target.manylinux.rsplit("_", 1)[1])
    platforms: list[str] = []
    for minor in range(glibc_minor, 4, -1):
        platforms.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY_MANYLINUX:
            platforms.append(f"{_LEGACY_MANYLINUX[minor]}_{arch}")
    platforms.append(f"linux_{arch}")
    major, minor = (int(x) for x in target.python.split(".")[:2])
    version = (major, minor)
    tags = list(cpython_tags(python_version=version, abis=[f"cp{major}{minor}"], platforms=platforms))
    tags += list(compatible_tags(python_version=version, interpreter=f"cp{major}{minor}", platforms=platforms))
    return tags


def _best_wheel(wheels: list[dict[str, Any]], target: Target) -> dict[str, Any] | None:
    rank = {tag: i for i, tag in enumerate(target_tags(target))}
    best: tuple[int, dict[str, Any]] | None = None
    for wheel in wheels:
        filename = wheel.get("name") or wheel["url"].rsplit("/", 1)[-1].split("#", 1)[0]
        _, _, _, tags = parse_wheel_filename(filename)
        score = min((rank[t] for t in tags if t in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, wheel)
    return best[1] if best else None


def pin_from_dict(record: dict[str, Any]) -> WheelPin:
    """A pin as a build manifest records it (``sha256:<hex>``; bare hex is accepted too)."""
    sha = str(record["sha256"]).removeprefix("sha256:")
    return WheelPin(str(record["name"]), str(record["version"]), str(record["filename"]), sha, record.get("size"))


class WheelCache:
    """Wheel files in the cache's blob store (``<root>/blobs/sha256/<hex>``), handed out under their names.

    A blob has no name, and uv installs only files named like wheels, so every wheel is handed out as
    ``<staging>/<filename>``: a hard link to its blob (a copy across file systems) in a directory of
    the caller's (one per build), hashed against the pin once made. The file name is the pin's (from a
    lock or a manifest, refused unless it is a plain wheel name), never one read from the cache.
    """

    def __init__(self, root: Path | None = None, *, staging: Path) -> None:
        self.store = cache_store(root)
        self.staging = staging

    def digest(self, pin: WheelPin) -> Digest:
        """The blob of ``pin``; a pin whose hash or file name is not a plain name is refused, never joined."""
        if not SHA256_HEX_RE.match(pin.sha256) or not _WHEEL_NAME.match(pin.filename):
            raise LockError(
                f"wheel pin {pin.filename!r} (sha256 {pin.sha256!r}) is not a wheel file name and a sha256",
                hint="the lock or manifest that named it was edited; re-lock, or use the manifest `image` wrote",
            )
        return Digest(pin.sha256)

    def path(self, pin: WheelPin) -> Path:
        """Where ``pin`` is handed out (``<staging>/<filename>``)."""
        self.digest(pin)
        return self.staging / pin.filename

    def get(self, pin: WheelPin) -> Path | None:
        """The staged file if the store holds the pinned bytes; a wrong blob is removed."""
        return self.store.stage(self.digest(pin), self.path(pin), size=pin.size)

    def _staged_download(self, pin: WheelPin) -> Path:
        # Verified while it streamed, a moment ago, by this process: not hashed a second time.
        staged = self.store.stage(self.digest(pin), self.path(pin), size=pin.size, verify=False)
        if staged is None:
            raise ImageError(
                f"{pin.filename}: the cached file vanished right after it was verified",
                hint="another process is cleaning the cache; run the command again",
            )
        return staged

    def fetch(self, pin: WheelPin, url: str, progress: Progress = NO_PROGRESS) -> Path:
        """The staged file of ``pin``, downloaded from ``url`` into the store first if it is not there.

        Through :func:`reprobuild.download.fetch_file`: streamed, retried on transient failures (never
        on a ``404``), and published only once it matches the lock's hash. A download (not a cache hit)
        is a ``progress`` task named after the wheel's file name and where it comes from.
        """
        cached = self.get(pin)
        if cached is not None:
            return cached
        source = "a local directory" if url.startswith("file://") else urllib.parse.urlsplit(url).hostname
        with progress.task(f"downloading {pin.filename} from {source}", pin.size) as task:
            self.store.fetch(
                url, expected=self.digest(pin), size=pin.size, what=pin.filename, failure=_INDEX, progress=task
            )
        return self._staged_download(pin)

    def require(self, pins: Iterable[WheelPin]) -> list[Path]:
        """Staged files for ``pins`` with no network; an error lists every missing wheel."""
        paths: list[Path] = []
        missing: list[str] = []
        for pin in pins:
            path = self.get(pin)
            if path is None:
                missing.append(f"{pin.filename} (sha256 {pin.sha256})")
            else:
                paths.append(path)
        if missing:
            raise ImageError(
                "offline, and these wheels are not in the cache: " + ", ".join(missing),
                hint="run once with network access, or add the directory that holds them to UV_FIND_LINKS "
                "and run once without --offline",
            )
        return paths
