"""Where repro-build keeps its caches.

``$REPRO_BUILD_CACHE``, else ``$XDG_CACHE_HOME/repro-build``, else ``~/.cache/repro-build``. The bytes of
every cached download and written layer (wheels, ``.deb`` files, Packages indexes, base and layer blobs)
live once in one content-addressed store under it, ``blobs/sha256/<hex>``
(:func:`reprobuild.oci.blobstore.cache_store`); small indexes beside it (``layers/<key>.json``,
``bases/<key>.json``) name the blobs a cache needs, by digest only. Every blob is found by a sha256 from
outside the cache (a lock, a Release file, a layer's inputs, a record sealed under a key kept outside
the cache) and verified when read, so a cache can be shared, copied or restored from CI without being
trusted. The one cache that is not blobs, ``buildenvs/<key>/`` (the project's build backend installed from
its build lock, :mod:`reprobuild.wheel.backendenv`), is re-hashed file by file against a list sealed under
that key before each use. The directories of the earlier layout (``wheels/``, ``debs/``, ``indexes/``, and
the directories under ``bases/``) are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The Cache Directory Tagging Specification's tag: backup and indexing tools skip the directory.
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by repro-build.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


def cache_root() -> Path:
    """The root of repro-build's caches (not created)."""
    explicit = os.environ.get("REPRO_BUILD_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "repro-build"


def prepare_cache_root() -> Path:
    """:func:`cache_root`, created if needed, with a ``.gitignore`` of ``*`` and a ``CACHEDIR.TAG``.

    The cache may lie inside a work tree (``HOME`` or ``XDG_CACHE_HOME`` pointing into a checkout);
    the ``.gitignore`` keeps git from listing it, and the dirty-tree check skips it anyway.
    """
    from reprobuild.fsutil import atomic_write_text

    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)  # not a .gitignore in a shared parent like ~/.cache: only in ours
    for name, text in (
        (".gitignore", "# Created by repro-build: a cache, never committed.\n*\n"),
        ("CACHEDIR.TAG", CACHEDIR_TAG),
    ):
        if not (root / name).exists():
            atomic_write_text(root / name, text)
    return root
