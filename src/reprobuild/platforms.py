"""The platforms a target can be built for and the machine repro-build runs on.

A target's platform is ``linux/amd64`` or ``linux/arm64`` (the OCI names, which are also Debian's for
these two); uv and wheel tags name the same machines ``x86_64`` and ``aarch64``.
"""

from __future__ import annotations

import platform

from reprobuild.errors import ConfigError

#: OCI architecture -> the machine name in wheel tags and uv's ``--python-platform`` triples.
ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}
#: ``platform.machine()`` (lowercased) -> OCI architecture.
_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def platform_dir(arch: str) -> str:
    """The directory of one platform's outputs under ``build/<target>/`` of a multi-platform target:
    ``linux-amd64``, ``linux-arm64``."""
    return f"linux-{arch}"


def host_arch() -> str | None:
    """The OCI architecture name of this machine (``amd64``/``arm64``), None for any other machine."""
    return _MACHINES.get(platform.machine().lower())


def require_host_arch(*, hint: str) -> str:
    """:func:`host_arch`, or a :class:`ConfigError` with ``hint`` (how to name the architecture instead)."""
    arch = host_arch()
    if arch is None:
        raise ConfigError(f"this machine ({platform.machine()!r}) is neither amd64 nor arm64", hint=hint)
    return arch
