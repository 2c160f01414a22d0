"""Where repro-build keeps content-addressed caches (wheels, .debs, base blobs).

``$REPRO_BUILD_CACHE``, else ``$XDG_CACHE_HOME/repro-build``, else ``~/.cache/repro-build``. Every entry
is keyed by its sha256 and verified when read, so a cache can be shared, copied or restored from CI
without being trusted.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The root of repro-build's caches (not created)."""
    explicit = os.environ.get("REPRO_BUILD_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "repro-build"
