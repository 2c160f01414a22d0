"""Other ``libz.so.1`` builds to load under Python's ``zlib`` (``LD_LIBRARY_PATH``): zlib 1.3.1 and zlib-ng.

- zlib 1.3.1: Debian 13's ``zlib1g`` package, downloaded by ``apt-get download`` with a private apt
  state whose only source is the machine's own Debian mirror (taken from its apt configuration, never
  named here) for suite ``trixie``; apt checks the ``.deb`` against the ``Packages`` index of the
  ``InRelease`` signed by the Debian archive key.
- zlib-ng 2.3.3 in zlib-compatible mode (what Fedora ships as its system libz): built with
  ``./configure --zlib-compat`` from the sources in the ``zlib-ng`` 1.1.0 sdist, which pip downloads
  with its sha256 required (:data:`ZLIB_NG_SDIST_SHA256`).

Both are cached under the test cache directory, so a machine fetches and builds them once.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from reprobuild.uvbin import find_uv
from tests.oci.rootfs import CACHE_DIR, apt_sources

#: sha256 of ``zlib_ng-1.1.0.tar.gz``, as the package index lists it (``uv pip compile --generate-hashes``
#: printed it among the release's files; pip checks it on download).
ZLIB_NG_SDIST = "zlib-ng==1.1.0"
ZLIB_NG_SDIST_SHA256 = "08a3a8468d4f130e3dc80d28ec42fcc7a878a57dfed616233e791066327d78a3"
#: ``zlibVersion()`` of each build, checked inside the subprocess that loads it.
ZLIB_NG_RUNTIME = "1.3.1.zlib-ng"
TRIXIE_ZLIB_RUNTIME = "1.3.1"

_DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def _debian_mirror() -> str:
    """The first Debian archive URI of the machine's apt sources (not the security archive)."""
    for f in apt_sources():
        text = f.read_text()
        if f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
                if uris and suites and not any(s.endswith("-security") for s in suites.group(1).split()):
                    return uris.group(1)
        else:
            for line in text.splitlines():
                m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m and not m.group(2).endswith("-security"):
                    return m.group(1)
    raise RuntimeError("no Debian archive in the machine's apt sources (/etc/apt/sources.list[.d])")


def trixie_zlib() -> Path:
    """A directory holding Debian 13's ``libz.so.1`` (zlib 1.3.1)."""
    arch = _DEB_ARCH[platform.machine()]
    mirror = _debian_mirror()
    key = hashlib.sha256(f"{mirror} trixie {arch}".encode()).hexdigest()[:16]
    out = CACHE_DIR / "libz" / f"zlib1g-trixie-{arch}-{key}"
    if (out / "libz.so.1").exists():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        apt = Path(tmp)
        (apt / "parts").mkdir()
        (apt / "state" / "lists" / "partial").mkdir(parents=True)
        (apt / "cache" / "archives" / "partial").mkdir(parents=True)
        (apt / "parts" / "trixie.sources").write_text(
            f"Types: deb\nURIs: {mirror}\nSuites: trixie\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
        opts = [
            "-q", "-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={apt / 'parts'}",
            "-o", f"Dir::State={apt / 'state'}", "-o", f"Dir::Cache={apt / 'cache'}",
            "-o", "Dir::State::status=/dev/null", "-o", f"APT::Architecture={arch}",
            "-o", "APT::Sandbox::User=root",
        ]  # fmt: skip
        subprocess.run(["apt-get", *opts, "update"], check=True, capture_output=True)
        subprocess.run(["apt-get", *opts, "download", f"zlib1g:{arch}"], check=True, capture_output=True, cwd=apt)
        [deb] = apt.glob("zlib1g_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(apt / "root")], check=True)
        [lib] = (apt / "root").glob("usr/lib/*/libz.so.1.*")
        staging = Path(tempfile.mkdtemp(dir=_mkdir(out.parent)))
        shutil.copy2(lib, staging / "libz.so.1")
        _publish(staging, out)
    return out


def zlib_ng_compat() -> Path:
    """A directory holding a zlib-ng ``libz.so.1`` built in zlib-compatible mode."""
    out = CACHE_DIR / "libz" / f"zlib-ng-compat-{platform.machine()}-{ZLIB_NG_SDIST_SHA256[:16]}"
    if (out / "libz.so.1").exists():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "req.txt").write_text(f"{ZLIB_NG_SDIST} --hash=sha256:{ZLIB_NG_SDIST_SHA256}\n")
        pip = [find_uv(), "tool", "run", "--from", "pip", "pip"]
        subprocess.run(
            [*pip, "download", "--quiet", "--no-deps", "--no-binary", ":all:", "--require-hashes",
             "-r", str(work / "req.txt"), "-d", str(work)],
            check=True, capture_output=True,
        )  # fmt: skip
        [sdist] = work.glob("zlib_ng-*.tar.gz")
        assert hashlib.sha256(sdist.read_bytes()).hexdigest() == ZLIB_NG_SDIST_SHA256
        with tarfile.open(sdist) as t:
            t.extractall(work / "src", filter="data")
        [src] = (work / "src").glob("zlib_ng-*/src/zlib_ng/zlib-ng")
        env = {**os.environ, "CFLAGS": "-O2"}
        subprocess.run(["./configure", "--zlib-compat"], cwd=src, check=True, capture_output=True, env=env)
        libname = re.search(r"^SHAREDLIBV=(\S+)", (src / "Makefile").read_text(), re.M)
        assert libname, "zlib-ng's configure wrote no SHAREDLIBV"
        jobs = str(max(1, len(os.sched_getaffinity(0))))
        subprocess.run(["make", "-j", jobs, libname.group(1)], cwd=src, check=True, capture_output=True, env=env)
        staging = Path(tempfile.mkdtemp(dir=_mkdir(out.parent)))
        shutil.copy2(src / libname.group(1), staging / "libz.so.1")
        _publish(staging, out)
    return out


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _publish(staging: Path, out: Path) -> None:
    """Rename a complete build into place; a concurrent session that got there first wins."""
    try:
        staging.rename(out)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (out / "libz.so.1").exists():
            raise
