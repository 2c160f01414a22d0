"""Locally built Debian rootfs tarballs for the OCI tests and benchmarks (no registry pull needed).

``mmdebstrap`` with ``SOURCE_DATE_EPOCH`` set builds bit-identical rootfs tars (checked by tests/base);
the mirror is taken from the machine's apt configuration (``/etc/apt/sources.list.d/*.sources`` and
``*.list``), never named here. Results are cached under ``~/.cache/repro-build-tests/`` keyed by every
input (suite, variant, packages, epoch, the apt sources' bytes, the mmdebstrap version), so a test
session builds each rootfs at most once per machine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE_DIR = Path(os.environ.get("REPRO_BUILD_TEST_CACHE", Path.home() / ".cache" / "repro-build-tests"))

#: A fixed date (2025-05-20T00:00:00Z, the snapshot the test machine's sources point at) so the
#: rootfs bytes do not depend on when the cache was filled.
ROOTFS_EPOCH = 1747699200


class RootfsUnavailable(Exception):
    """mmdebstrap is missing or failed (the caller turns this into a skip/fail)."""


def apt_sources() -> list[Path]:
    """The machine's apt source files, in a stable order."""
    d = Path("/etc/apt/sources.list.d")
    files = sorted(p for p in d.glob("*") if p.suffix in {".sources", ".list"} and p.is_file())
    main = Path("/etc/apt/sources.list")
    if main.is_file() and main.stat().st_size:
        files.insert(0, main)
    return files


def debian_rootfs(*, variant: str = "essential", include: tuple[str, ...] = (), suite: str = "bookworm") -> Path:
    """Return the path of a cached rootfs tar built by mmdebstrap, building it when absent."""
    binary = shutil.which("mmdebstrap")
    if binary is None:
        raise RootfsUnavailable("mmdebstrap is not installed: `apt-get install -y mmdebstrap`")
    sources = apt_sources()
    if not sources:
        raise RootfsUnavailable("no apt sources configured under /etc/apt")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    key = hashlib.sha256()
    for part in (suite, variant, ",".join(sorted(include)), str(ROOTFS_EPOCH), version):
        key.update(part.encode() + b"\0")
    for src in sources:
        key.update(src.read_bytes() + b"\0")
    name = f"debian-{suite}-{variant}{'-' + '-'.join(sorted(include)) if include else ''}-{key.hexdigest()[:16]}.tar"
    out = CACHE_DIR / name
    if out.is_file():
        return out
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix=".build-") as tmp:
        target = Path(tmp) / "rootfs.tar"
        cmd = [binary, f"--variant={variant}", "--format=tar", "--quiet"]
        if include:
            cmd.append(f"--include={','.join(include)}")
        cmd += [suite, str(target), *(str(s) for s in sources)]
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(ROOTFS_EPOCH)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise RootfsUnavailable(f"`{' '.join(cmd)}` failed:\n{proc.stderr[-4000:]}")
        # Rename into place only when complete: a killed build leaves no cache entry.
        target.replace(out)
    return out


if __name__ == "__main__":
    import sys

    inc = tuple(a for a in sys.argv[2:])
    print(debian_rootfs(variant=sys.argv[1] if len(sys.argv) > 1 else "essential", include=inc))
