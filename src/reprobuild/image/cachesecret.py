"""The fleet secret that binds a registry cache entry to the inputs it was built from.

A layer read from a registry cache can be checked against its inputs only by re-deriving it (install
the wheels, write the tar, hash it), which is most of the cost the cache is meant to save; the
Debian base, the facts found in a base and a target's third-party layers cannot be checked cheaper
than building them. So a fleet that shares a cache shares a secret too: every entry a machine
pushes carries an HMAC-SHA256, under that secret, of the entry's kind, its key (the sha256 of every
input that decides it) and everything it says (the blobs' digests, sizes and media types included),
and a reader uses an entry only when that HMAC verifies for the key *it* computed from *its* inputs.

The secret is ``$REPRO_BUILD_CACHE_SECRET`` when set, else the file that ``[tool.repro-build]
cache-secret-file`` names (relative to the project; a CI secret mounted as a file). It is never
written to the registry, the cache directory or a manifest. It must hold at least
:data:`MIN_SECRET_BYTES` bytes (``openssl rand -hex 32`` gives 64). Without one, the registry cache
runs in its trust-free mode (:mod:`reprobuild.image.registrycache`).

Whoever can read the secret can forge entries: it is as strong as the CI secret store that holds it.
``repro-build verify`` reads no cache at all, so it stays the end-to-end check.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from reprobuild.errors import ConfigError

SECRET_ENV = "REPRO_BUILD_CACHE_SECRET"
#: Fewer bytes than this are refused: an HMAC key is only as strong as it is long (RFC 2104 section 3
#: advises no less than the hash's output; 16 bytes keep brute force out of reach).
MIN_SECRET_BYTES = 16
#: Read at most this much of a secret file (a secret is a line, not a document).
_MAX_FILE_BYTES = 4096
#: Domain separation: this HMAC is never confused with another use of the same secret.
_DOMAIN = b"repro-build registry cache entry v1\n"


@dataclass(frozen=True)
class FleetSecret:
    """The secret (never printed) and where it came from (printed)."""

    origin: str
    _key: bytes = field(repr=False)

    def seal(self, data: bytes) -> str:
        """The hex HMAC-SHA256 of ``data`` under the secret."""
        return hmac.new(self._key, _DOMAIN + data, hashlib.sha256).hexdigest()

    def verifies(self, data: bytes, tag: object) -> bool:
        """True when ``tag`` is :meth:`seal` of ``data`` (constant-time comparison)."""
        return isinstance(tag, str) and hmac.compare_digest(self.seal(data), tag)


def fleet_secret(root: Path, secret_file: str | None) -> FleetSecret | None:
    """The fleet secret (module docstring), or ``None`` when neither the variable nor the config names one."""
    value = os.environ.get(SECRET_ENV)
    if value:
        return _checked(value.strip().encode(), f"${SECRET_ENV}")
    if not secret_file:
        return None
    path = (root / Path(secret_file).expanduser()).resolve()
    what = f"[tool.repro-build] cache-secret-file {secret_file!r}"
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigError(
            f"{what}: cannot read {path}: {e.strerror or e}",
            hint=f"create it (e.g. `openssl rand -hex 32 > {path}`), or set ${SECRET_ENV}; "
            "remove the key to share layers without a secret (every entry is then re-derived)",
        ) from e
    if len(data) > _MAX_FILE_BYTES:
        raise ConfigError(f"{what}: {path} is over {_MAX_FILE_BYTES} bytes; a secret is one line")
    return _checked(data.strip(), f"{path}")


def _checked(key: bytes, origin: str) -> FleetSecret:
    if len(key) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"the registry cache secret from {origin} has {len(key)} bytes, fewer than {MIN_SECRET_BYTES}",
            hint="make one with `openssl rand -hex 32` and give every machine of the fleet the same",
        )
    return FleetSecret(origin, key)
