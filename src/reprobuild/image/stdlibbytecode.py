"""The embedded Debian base's standard-library byte-code: the ``.pyc`` files Debian's maintainer scripts write.

The base is assembled from ``.deb`` files without running maintainer scripts
(:mod:`reprobuild.base.debian.rootfs`), so it holds no byte-code, and a container would compile every
standard-library module it imports at each start (a read-only root file system cannot keep what it
compiles). Debian writes that byte-code in ``postinst``: ``python3.X-minimal`` and ``python3.X`` run
``python3.X -E -S py_compile.py`` over every ``/usr/lib/python3.X/**.py`` of ``libpython3.X-minimal``
and ``libpython3.X-stdlib`` (``sitecustomize.py`` only when its symlink into ``/etc`` resolves), and every
package with Python modules runs ``py3compile -p PACKAGE`` (its ``/usr/lib/python3/dist-packages``
files; ``python3`` and ``python3-minimal`` add their ``/usr/share/python3`` helpers). Both leave the
invalidation mode at ``py_compile``'s default, ``timestamp``.

This module writes the same files as **one layer on top of the base layer**, so the base layer stays
exactly the ``.deb`` files' contents (what ``repro-build base`` writes and the lock describes) and the
byte-code, which depends on the compiler too, changes on its own. Covered: every ``.py`` (a file, or
a symlink that resolves to a ``.py`` file of the base) under :data:`COVERED_ROOTS`; whatever is not
valid Python for the image's version is left out, as py_compile's failures are.

Bytes: each pyc is compiled by the image's own ``X.Y`` interpreter (:mod:`reprobuild.image.interpreter`,
the compiler of the wheels' byte-code, recorded in the manifest's ``bytecode.compiler``) in one fresh
process with a fixed environment, in path order, from the source bytes of the base layer, with
``co_filename`` the in-image path. A ``timestamp`` pyc records its source's mtime and size; the mtime
is the one the base layer gives the source (the packaged one, never newer than the base's epoch), so
the interpreter in the container finds every pyc up to date and never compiles or writes, and a source
changed later (a patched module in a derived image) is recompiled instead of silently shadowed, as on
Debian. Directories keep the base layer's metadata, ``__pycache__`` is 0755, every pyc 0644, all
owned by root, with the base's epoch.

The layer depends on the base (its manifest digest), the compiler's version, the compressor and
repro-build's own code, so it is cached under those: its blob in the cache's one blob store and a record
``<cache>/bases/stdlib-<key>.json`` naming it, sealed with the machine's cache key like the base itself
(:mod:`reprobuild.image.basecache`).
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reprobuild import __version__
from reprobuild.config import Target
from reprobuild.distribution import code_digest
from reprobuild.errors import BaseImageError, ReproBuildError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.image.basecache import RecordError, StdlibCache, StdlibLayer, layer_fields, layer_json
from reprobuild.image.baseinfo import check_base
from reprobuild.image.buildcache import cached_base_info
from reprobuild.image.bytecode import compile_sources
from reprobuild.image.interpreter import Interpreter, find_interpreter
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import DECOMPRESS_ERRORS, Compressor
from reprobuild.oci.image import Image, append_layers
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.tarwriter import LayerEntry

if TYPE_CHECKING:
    from reprobuild.image.registrycache import RegistryCache

log = logging.getLogger(__name__)

#: Where Debian's maintainer scripts compile byte-code (``{minor}`` is the image's ``X.Y``).
COVERED_ROOTS = ("usr/lib/python{minor}/", "usr/lib/python3/dist-packages/", "usr/share/python3/")

#: Bump when the layer's contents change for the same base and compiler (entry rules, covered paths).
FORMAT = 1

_READ_ERRORS: tuple[type[Exception], ...] = (tarfile.TarError, *DECOMPRESS_ERRORS)

#: Symlink hops followed before a link is taken as a loop (Linux's limit).
_MAX_HOPS = 40


@dataclass(frozen=True)
class _Tree:
    """What of the base layer the byte-code needs: directories, links and every ``.py`` file."""

    dirs: dict[str, LayerEntry]
    symlinks: dict[str, str]
    hardlinks: dict[str, str]
    sources: dict[str, tuple[bytes, int]]  # path -> (bytes, mtime in the layer)


def _name(raw: str) -> str:
    return "/".join(p for p in raw.split("/") if p not in ("", "."))


def _read_tree(layer: Layer, what: str) -> _Tree:
    dirs: dict[str, LayerEntry] = {}
    symlinks: dict[str, str] = {}
    hardlinks: dict[str, str] = {}
    sources: dict[str, tuple[bytes, int]] = {}
    try:
        with layer.open_uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                path = _name(m.name)
                if not path:
                    continue
                if m.isdir():
                    dirs[path] = LayerEntry(path, "dir", m.mode & 0o7777, uid=m.uid, gid=m.gid, mtime=int(m.mtime))
                elif m.issym():
                    symlinks[path] = m.linkname
                elif m.islnk():
                    hardlinks[path] = _name(m.linkname)
                elif m.isreg() and path.endswith(".py"):
                    f = tar.extractfile(m)
                    assert f is not None
                    sources[path] = (f.read(), int(m.mtime))
    except _READ_ERRORS as e:
        raise BaseImageError(f"{what}: reading the base layer {layer.digest} failed: {e}") from e
    return _Tree(dirs, symlinks, hardlinks, sources)


def _resolve(path: str, symlinks: dict[str, str]) -> str | None:
    """``path`` with every symlink in it followed inside the image's root; None for a loop."""
    pending = path.split("/")
    done: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        target = symlinks.get("/".join([*done, part]))
        if target is None:
            done.append(part)
            continue
        hops += 1
        if hops > _MAX_HOPS:
            return None
        if target.startswith("/"):
            done = []
        pending = target.split("/") + pending
    return "/".join(done)


def _source(path: str, tree: _Tree) -> tuple[bytes, int] | None:
    """The bytes and mtime a ``.py`` path of the image reads (through symlinks and hardlinks), if any."""
    resolved = _resolve(path, tree.symlinks)
    if resolved is None:
        return None
    return tree.sources.get(tree.hardlinks.get(resolved, resolved))


def covered(path: str, minor: str) -> bool:
    """Whether Debian's maintainer scripts compile the in-image ``path`` (no leading ``/``)."""
    return path.endswith(".py") and any(path.startswith(root.format(minor=minor)) for root in COVERED_ROOTS)


def stdlib_entries(
    base_layer: Layer, *, minor: str, epoch: int, interpreter: Interpreter, scratch: Path, what: str
) -> list[LayerEntry]:
    """The layer entries of the byte-code of ``base_layer``'s covered modules, compiled by ``interpreter``.

    ``epoch`` is the base layer's: sources' mtimes are clamped to it as the base's tar writer did, and
    the new entries carry it.
    """
    if interpreter.minor != minor:
        raise BaseImageError(f"{what}: the base has Python {minor}, the byte-code compiler is {interpreter.version}")
    tree = _read_tree(base_layer, what)
    candidates = sorted(
        p for p in (*tree.sources, *tree.symlinks, *tree.hardlinks) if covered(p, minor) and p not in tree.dirs
    )
    jobs: list[tuple[str, bytes, int]] = []
    for path in candidates:
        found = _source(path, tree)
        if found is not None:  # a dangling link (Debian skips it too) or one to a non-.py file
            data, mtime = found
            jobs.append((path, data, min(mtime, epoch)))
    compiled = compile_sources(jobs, interpreter=interpreter, scratch=scratch, mode="TIMESTAMP")
    entries: dict[str, LayerEntry] = {}
    for pyc_path, data in compiled.values():
        path = pyc_path.lstrip("/")
        entries[path] = LayerEntry(path, "file", 0o644, data, mtime=epoch)
        cache_dir = posixpath.dirname(path)
        parent = cache_dir
        while parent and parent not in entries:
            # A directory the base has keeps its metadata (overlaid without it, it would get the engine's
            # defaults at run time); a new ``__pycache__`` is 0755 with the epoch.
            entries[parent] = tree.dirs.get(parent, LayerEntry(parent, "dir", 0o755, mtime=epoch))
            parent = posixpath.dirname(parent)
    return list(entries.values())


def write_stdlib_layer(
    base_layer: Layer,
    *,
    minor: str,
    epoch: int,
    interpreter: Interpreter,
    compressor: Compressor,
    store: BlobStore,
    what: str,
    scratch: Path | None = None,
    progress: Progress = NO_PROGRESS,
) -> StdlibLayer:
    """Compile the covered modules of ``base_layer`` and write their byte-code as one layer into ``store``.

    The sources are compiled in a temporary directory under ``scratch`` (the system's by default); the
    bytes do not depend on where.
    """
    with tempfile.TemporaryDirectory(prefix="repro-build-stdlib-pyc-", dir=scratch) as tmp:
        entries = stdlib_entries(
            base_layer, minor=minor, epoch=epoch, interpreter=interpreter, scratch=Path(tmp), what=what
        )
        layer = write_layer(
            entries,
            epoch=epoch,
            compressor=compressor,
            store=store,
            preserve_metadata=True,
            progress=progress,
            description="standard-library byte-code",
        )
    return StdlibLayer(layer, sum(1 for e in entries if e.kind == "file"))


def history_entry(created: str, files: int, interpreter: Interpreter) -> dict[str, str]:
    """The image config's history line of the layer (what ``docker history`` shows)."""
    return {
        "created": created,
        "created_by": f"repro-build base: standard-library byte-code, {files} timestamp .pyc files as Debian's "
        f"maintainer scripts write them, compiled by {interpreter.implementation} {interpreter.version}",
    }


# ------------------------------------------------------------------ on top of the base, cached


def stdlib_key(base: Image, interpreter: Interpreter, compressor: Compressor) -> str:
    """The sha256 of everything the layer's bytes depend on."""
    payload = {
        "kind": "debian-stdlib-bytecode",
        "format": FORMAT,
        "base": str(base.digest),
        "compiler": interpreter.to_dict(),
        "compressor": compressor.describe(),
        "repro-build": __version__,
        "repro-build-code": code_digest(),
    }
    return hashlib.sha256(canonical_json_bytes(payload)).hexdigest()


def with_stdlib_bytecode(
    base: Image,
    target: Target,
    *,
    epoch: int,
    compressor: Compressor,
    staging: Path,
    use_cache: bool = True,
    progress: Progress = NO_PROGRESS,
) -> Image:
    """``base`` (the Debian base's one layer) with the standard-library byte-code layer on top.

    The compiler is the one the target's wheels get (:func:`~reprobuild.image.interpreter.find_interpreter`
    for the base's Python ``X.Y.Z``). The layer is taken from its sealed cache entry when ``use_cache``
    and the entry verifies, else compiled and written (and cached).
    """
    what = f"base {target.base.text}"
    if len(base.layers) != 1:
        raise BaseImageError(f"{what}: the Debian base has {len(base.layers)} layers, not one")
    info = cached_base_info(base, name=target.base.text, use_cache=use_cache)
    check_base(info, target, name=target.base.text)
    interpreter = find_interpreter(info.python_version)
    key = stdlib_key(base, interpreter, compressor)
    cache = StdlibCache()
    found = cache.get(key) if use_cache else None
    if found is None:
        written = write_stdlib_layer(
            base.layers[0],
            minor=info.python_minor,
            epoch=epoch,
            interpreter=interpreter,
            compressor=compressor,
            store=cache.store,  # written straight into the cache's store, verified as written
            what=what,
            scratch=staging.parent,
            progress=progress,
        )
        found = cache.put(key, written)
    created = str(base.config.get("created", ""))
    return append_layers(base, found.layer, history=[history_entry(created, found.files, interpreter)])


# -- the registry cache's ``stdlib-<key>`` entries (image/registrycache.py, sealed mode only) -------------


def share_stdlib(remote: RegistryCache, base: Image, *, name: str, fetch: bool) -> None:
    """Take in (``fetch``) or share this machine's cached standard-library layer for the Debian ``base``.

    Taken in: ``remote``'s entry (its seal under the fleet secret checked there, its blob verified by
    digest into the cache's store) is read as data and recorded and sealed again with this machine's
    cache key, where :func:`with_stdlib_bytecode` checks it as any cached layer. Shared: the cached
    layer, once it verifies.
    """
    if not remote.shares("stdlib"):
        return
    info = cached_base_info(base, name=name, remote=remote)
    key = stdlib_key(base, find_interpreter(info.python_version), Compressor.gzip())
    cache = StdlibCache()
    if not fetch:
        found = cache.get(key)
        if found is not None:
            layer = found.layer
            remote.put("stdlib", key, _payload(key, found), [(layer.descriptor, layer.path)])
        return
    if cache.has(key):
        return
    entry = remote.get("stdlib", key, cache.store)
    if entry is None:
        return
    try:
        payload = entry.payload
        if set(payload) != {"files", "key", "layer"} or payload["key"] != key:
            raise RecordError("not this key's layer")
        descriptor, diff_id = layer_fields(payload["layer"], "layer")
        files = payload["files"]
        if isinstance(files, bool) or not isinstance(files, int) or files < 0:
            raise RecordError("files is not a non-negative integer")
        blob = cache.store.verified(descriptor.digest, size=descriptor.size)
        if blob is None:
            raise RecordError(f"layer blob {descriptor.digest} did not arrive whole")
        cache.put(key, StdlibLayer(Layer(descriptor, diff_id, blob), files))
    except (RecordError, ReproBuildError) as e:
        message = e.message if isinstance(e, ReproBuildError) else str(e)
        log.warning("warning: registry cache entry stdlib-%s is malformed (%s); compiling it", key[:12], message)


def _payload(key: str, found: StdlibLayer) -> dict[str, object]:
    """The registry cache entry's payload (what :func:`share_stdlib` reads back on another machine)."""
    return {"files": found.files, "key": key, "layer": layer_json(found.layer)}
