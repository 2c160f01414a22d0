"""Real sdists from the package index, pinned ``name==version`` + sha256 and fetched by hash into a cache.

The index is the one uv is configured with on this machine (``UV_INDEX_URL``, ``uv.toml``; no index is
named here): ``uv pip compile --no-deps --no-binary :all: --format pylock.toml`` answers with the sdist's
URL and sha256 without building anything. The answer is data: the URL must be ``https`` and its sha256
must be the pinned one, and the downloaded bytes are checked against the pin before they land in the
cache (``~/.cache/repro-build-tests/sdists/``, or ``$REPRO_BUILD_TEST_CACHE/sdists``), and again on use.
The pins themselves were taken with ``pip download --no-deps --no-binary :all: NAME==VERSION`` and
``sha256sum`` (see where each list of pins is kept).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
import tempfile
import tomllib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import requests
from packaging.utils import canonicalize_name

from reprobuild.urls import redact
from reprobuild.uvbin import find_uv

CACHE_DIR = Path(os.environ.get("REPRO_BUILD_TEST_CACHE", Path.home() / ".cache" / "repro-build-tests")) / "sdists"


class SdistUnavailable(RuntimeError):
    """The sdist could not be fetched (no network, or the index does not have it)."""


@dataclass(frozen=True)
class Sdist:
    """One pinned sdist: ``name==version`` and the sha256 of its ``.tar.gz``."""

    name: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sdist_url(sdist: Sdist) -> str:
    """The index's URL for the sdist, from uv's PEP 751 answer (checked against the pinned hash)."""
    cmd = [find_uv(), "pip", "compile", "-", "--no-deps", "--no-binary", ":all:", "--format", "pylock.toml"]
    out = subprocess.run(
        [*cmd, "--quiet", "--no-header", "--python-version", "3.11"],
        input=f"{sdist.requirement}\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SdistUnavailable(f"{sdist.requirement}: {out.stderr.strip()[-1500:]}")
    packages = tomllib.loads(out.stdout).get("packages", [])
    for package in packages:
        entry = package.get("sdist") or {}
        url, sha = entry.get("url"), (entry.get("hashes") or {}).get("sha256")
        if isinstance(url, str) and sha == sdist.sha256 and urllib.parse.urlsplit(url).scheme == "https":
            return url
    raise SdistUnavailable(f"{sdist.requirement}: the index offers no https sdist with sha256 {sdist.sha256}")


def fetch(sdist: Sdist) -> Path:
    """The cached ``.tar.gz`` of ``sdist``, downloaded by hash when it is not cached yet."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    dest = CACHE_DIR / f"{canonicalize_name(sdist.name)}-{sdist.version}-{sdist.sha256[:16]}.tar.gz"
    if dest.is_file() and _sha256(dest) == sdist.sha256:
        return dest
    url = _sdist_url(sdist)
    try:
        response = requests.get(url, timeout=120)
        response.raise_for_status()
    except requests.RequestException as e:
        raise SdistUnavailable(f"{sdist.requirement}: {redact(url)}: {e}") from e
    if hashlib.sha256(response.content).hexdigest() != sdist.sha256:
        raise SdistUnavailable(f"{sdist.requirement}: {redact(url)} does not have the pinned sha256")
    with tempfile.NamedTemporaryFile(dir=CACHE_DIR, delete=False) as tmp:
        tmp.write(response.content)
    Path(tmp.name).replace(dest)
    return dest


def unpack(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` (tar's ``data`` filter) into ``dest``; return its single top directory."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    [top] = [p for p in dest.iterdir() if p.is_dir()]
    return top
