"""Real sdists from the package index, pinned ``name==version`` + sha256 and fetched by hash into a cache.

The index is the one pip is configured with on this machine (``pip config``/``PIP_INDEX_URL``); no
index is named here. ``pip download --no-deps --no-binary :all: --require-hashes`` checks the file
against the pinned sha256 before it lands in the cache (``~/.cache/repro-build-tests/sdists/``, or
``$REPRO_BUILD_TEST_CACHE/sdists``), and the cache is checked again on every use.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

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


def fetch(sdist: Sdist) -> Path:
    """The cached ``.tar.gz`` of ``sdist``, downloaded by hash when it is not cached yet."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for cached in CACHE_DIR.glob(f"*{sdist.sha256[:16]}*.tar.gz"):
        if _sha256(cached) == sdist.sha256:
            return cached
        cached.unlink()
    with tempfile.TemporaryDirectory(prefix="sdist-", dir=CACHE_DIR) as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{sdist.requirement} --hash=sha256:{sdist.sha256}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        out = subprocess.run(
            [*cmd, "--require-hashes", "-r", str(req), "-d", str(Path(tmp) / "d")],
            capture_output=True,
            text=True,
            check=False,
        )
        files = sorted((Path(tmp) / "d").glob("*.tar.gz")) if (Path(tmp) / "d").is_dir() else []
        if out.returncode != 0 or len(files) != 1 or _sha256(files[0]) != sdist.sha256:
            raise SdistUnavailable(f"{sdist.requirement}: {(out.stderr or out.stdout).strip()[-2000:]}")
        dest = CACHE_DIR / f"{files[0].name.removesuffix('.tar.gz')}-{sdist.sha256[:16]}.tar.gz"
        shutil.move(files[0], dest)
    return dest


def unpack(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` (tar's ``data`` filter) into ``dest``; return its single top directory."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    [top] = [p for p in dest.iterdir() if p.is_dir()]
    return top
