"""The environment of a wheel build: what the backend gets from the host, and what repro-build fixes.

The environment handed to the backend is a whitelist (:data:`PASSTHROUGH`: how to reach the index,
never what to build), the caller's compiler flags (:data:`USER_FLAGS`, kept and recorded with the
build), plus the normalised variables of :func:`normalised_env`. Both runners use it: the host's
(:class:`reprobuild.wheel.build.HostRunner`) and the builder image's (:mod:`reprobuild.wheel.container`).

Flags are **added, never replaced**. setuptools (``_distutils/sysconfig.py: customize_compiler``)
*replaces* the interpreter's ``CFLAGS`` (``-DNDEBUG -g -fwrapv -O3 -Wall``) with ``$CFLAGS`` when that
is set, but *appends* ``$CPPFLAGS`` to the C and C++ compile and link commands; meson appends
``CPPFLAGS`` to every C-family compile too, and autotools do. So repro-build never sets ``CFLAGS`` or
``CXXFLAGS``: its one compiler addition, ``-ffile-prefix-map=<build root>=.``, goes after the caller's
``CPPFLAGS``, and extensions are compiled with exactly the optimisation and ``NDEBUG`` of a plain
``uv build``. The build root is the path that reaches compiler output (DWARF ``DW_AT_comp_dir``,
``__FILE__``), so it is mapped to ``.``; ``RUSTFLAGS`` gets ``--remap-path-prefix`` after the
caller's own. ``TMPDIR`` points inside the build root. uv's isolated environment also has a random
path, but it only appears as an ``-I`` option, which GCC leaves out of the recorded command line;
``tests/packages/setuptools_cext`` (built with ``-g``) checks both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, Protocol

from reprobuild.epoch import Epoch
from reprobuild.errors import WheelError
from reprobuild.lockdir import RELOCK_HINT
from reprobuild.wheel.outputs import Builder

Step = Literal["sdist", "wheel"]
Log = Callable[[str], None]

#: Host variables passed to the build: where the index is and how to reach it; nothing that shapes output.
PASSTHROUGH = ("PATH", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NETRC")
#: Prefixes of passed variables: proxies, and uv's index, cache and network settings. uv variables that
#: change *what* is built (``UV_NO_BUILD_ISOLATION``, ``UV_CONSTRAINT``, ``UV_PYTHON``, …) are not passed.
PASSTHROUGH_PREFIXES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "UV_INDEX",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_CACHE_DIR",
    "UV_NO_CACHE",
    "UV_OFFLINE",
    "UV_NATIVE_TLS",
    "UV_HTTP_TIMEOUT",
    "UV_REQUEST_TIMEOUT",
    "UV_INSECURE_HOST",
    "UV_KEYRING_PROVIDER",
    "UV_LINK_MODE",
    "UV_CONCURRENT_",
    "UV_PYTHON_INSTALL_DIR",
    "UV_PYTHON_DOWNLOADS",
    "UV_PYTHON_INSTALL_MIRROR",
)
#: Placeholder for the build root in the recorded environment (the real path is random).
BUILD_ROOT_PLACEHOLDER = "<build-root>"
#: umask of the backend process: 0644 files, 0755 directories, whatever the caller's umask is.
BUILD_UMASK = 0o022


#: Compiler and linker flags of the caller: kept (a user's ``-march`` or ``-O2`` is theirs to choose),
#: passed to the backend and recorded with the build, so the record says what shaped the binary.
USER_FLAGS = ("CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "RUSTFLAGS")


def _join(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


def user_flags(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's compiler flags (:data:`USER_FLAGS`) that are set and not blank."""
    return {k: environ[k] for k in USER_FLAGS if environ.get(k, "").strip()}


def normalised_env(build_root: str, epoch: Epoch, flags: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables every backend gets: fixed values, the build root, the epoch, and the caller's
    compiler ``flags`` with repro-build's additions appended (see the module docstring)."""
    given = dict(flags or {})
    return {
        **given,
        "TZ": "UTC",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
        # No __pycache__ written into the source tree mid-build, where a later step could pick it up.
        "PYTHONDONTWRITEBYTECODE": "1",
        "SOURCE_DATE_EPOCH": str(epoch.seconds),
        "TMPDIR": f"{build_root}/tmp",
        # Appended by setuptools, meson and autotools alike; CFLAGS would replace the interpreter's -O3.
        "CPPFLAGS": _join(given.get("CPPFLAGS"), f"-ffile-prefix-map={build_root}=."),
        "RUSTFLAGS": _join(given.get("RUSTFLAGS"), f"--remap-path-prefix={build_root}=."),
        "NO_COLOR": "1",
    }


def recorded_env(epoch: Epoch, flags: Mapping[str, str] | None = None) -> dict[str, str]:
    """The normalised environment as the build record shows it (build root as a placeholder)."""
    return normalised_env(BUILD_ROOT_PLACEHOLDER, epoch, flags)


def host_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The whitelisted part of ``environ`` (see :data:`PASSTHROUGH`)."""
    return {k: v for k, v in environ.items() if k in PASSTHROUGH or k.startswith(PASSTHROUGH_PREFIXES)}


class Runner(Protocol):
    """Runs one ``uv build`` step: ``source`` (a directory under ``build_root``) into ``out_dir``."""

    def build(self, step: Step, source: Path, out_dir: Path, build_root: Path, *, deps_cached: bool = False) -> None:
        """``deps_cached``: the locked build dependencies are likely in uv's cache (an earlier step of this
        build, or an earlier build, installed them): try without the index first."""
        ...

    def builder(self) -> Builder | None: ...

    def flags(self) -> Mapping[str, str]:
        """The caller's compiler flags and the scm version variables this runner passes to the backend
        beyond :func:`normalised_env`'s fixed values (recorded with the build)."""
        ...


def backend_failure(step: Step, output: str, lock: Path) -> WheelError:
    """A :class:`WheelError` for a failed ``uv build`` step, with the hint that fits uv's message."""
    tail = "\n".join(output.strip().splitlines()[-30:])
    hint = "run `uv build` in the project to see the backend's full output"
    if "hash" in output.lower() and ("constraint" in output.lower() or "require-hashes" in output.lower()):
        hint = f"a build requirement is missing from {lock.name} or its hash does not match: " + RELOCK_HINT
    return WheelError(f"building the {step} failed:\n{tail}", hint=hint)
