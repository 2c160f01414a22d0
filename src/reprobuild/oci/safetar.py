"""A safe reader for layer tars read for inspection (e.g. finding ``/usr/bin/python3`` or reading
``/etc/os-release`` in a base image). Nothing is ever extracted to disk.

Each entry's path is normalised inside the image root. These are errors naming the layer and the
entry (hostile or corrupt input): an absolute name or one with ``..``; a relative symlink that climbs
out of the root; a hardlink to a path not seen earlier in the same layer; a device node or FIFO
(unless ``allow_devices``). Whiteouts (``.wh.<name>``, ``.wh..wh..opq``; image-spec ``layer.md``) are
flagged, not applied, except by :func:`read_files`, which overlays layers in order.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO, Literal

from reprobuild.errors import OCIError
from reprobuild.oci.compress import DECOMPRESS_ERRORS, open_sniffed
from reprobuild.oci.layer import Layer

SafeKind = Literal["file", "dir", "symlink", "hardlink", "whiteout", "opaque", "device"]
WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class SafeEntry:
    """One checked entry. ``open()`` is valid only until the iterator moves on (the tar is streamed)."""

    path: str
    kind: SafeKind
    mode: int
    size: int
    uid: int
    gid: int
    target: str | None
    open: Callable[[], BinaryIO] | None


def _bad(artifact: str, name: str, why: str) -> OCIError:
    return OCIError(
        f"{artifact}: tar entry {name!r} {why}",
        hint="the layer is hostile or corrupt; do not use this image",
    )


def _norm(name: str, artifact: str) -> str:
    if "\0" in name:
        raise _bad(artifact, name, "contains a NUL byte")
    if name.startswith("/"):
        raise _bad(artifact, name, "is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _bad(artifact, name, "contains `..`")
    return "/".join(parts)


def _symlink_escapes(path: str, target: str) -> bool:
    """True when a relative ``target`` of the link at ``path`` climbs above the root.

    Absolute targets are resolved inside the image root (chroot semantics), so they cannot escape.
    """
    if target.startswith("/"):
        return False
    depth = len(PurePosixPath(path).parent.parts) if "/" in path else 0
    for p in target.split("/"):
        if p == "..":
            depth -= 1
            if depth < 0:
                return True
        elif p not in ("", "."):
            depth += 1
    return False


#: A broken tar or a broken compressed stream under it.
_READ_ERRORS: tuple[type[Exception], ...] = (tarfile.TarError, *DECOMPRESS_ERRORS)


def iter_layer_entries(f: BinaryIO, *, artifact: str, allow_devices: bool = False) -> Iterator[SafeEntry]:
    """Check and yield each entry of the (uncompressed or compressed) tar stream ``f``."""
    seen: set[str] = set()
    try:
        # Decompress here rather than with tarfile's "r|*": tarfile's stream mode stops after the first
        # member of a multi-member gzip, which is what repro-build's own gzip layers are.
        with tarfile.open(fileobj=open_sniffed(f), mode="r|") as tf:
            for m in tf:
                path = _norm(m.name, artifact)
                if not path:
                    continue  # the root itself ("./")
                base = PurePosixPath(path).name
                kind: SafeKind
                target: str | None = None
                opener: Callable[[], BinaryIO] | None = None
                if base == OPAQUE:
                    kind = "opaque"
                elif base.startswith(WHITEOUT_PREFIX):
                    kind = "whiteout"
                elif m.isreg():
                    kind = "file"

                    def opener(m: tarfile.TarInfo = m) -> BinaryIO:
                        r = tf.extractfile(m)
                        assert r is not None
                        return r  # type: ignore[return-value]

                elif m.isdir():
                    kind = "dir"
                elif m.issym():
                    kind, target = "symlink", m.linkname
                    if _symlink_escapes(path, m.linkname):
                        raise _bad(artifact, m.name, f"is a symlink to {m.linkname!r}, which points outside the root")
                elif m.islnk():
                    kind, target = "hardlink", _norm(m.linkname, artifact)
                    if target not in seen:
                        raise _bad(
                            artifact, m.name, f"is a hardlink to {m.linkname!r}, which is not earlier in the layer"
                        )
                elif m.isdev() or m.isfifo():
                    if not allow_devices:
                        raise _bad(artifact, m.name, "is a device node or FIFO")
                    kind = "device"
                else:
                    raise _bad(artifact, m.name, f"has unsupported type {m.type!r}")
                seen.add(path)
                yield SafeEntry(path, kind, m.mode, m.size, m.uid, m.gid, target, opener)
    except _READ_ERRORS as e:
        raise OCIError(
            f"{artifact}: reading the layer tar failed: {e}", hint="the layer is truncated or corrupt"
        ) from e


def iter_layer(layer: Layer, *, allow_devices: bool = False) -> Iterator[SafeEntry]:
    """:func:`iter_layer_entries` over a :class:`Layer`'s uncompressed stream."""
    with layer.open_uncompressed() as f:
        yield from iter_layer_entries(f, artifact=f"layer {layer.digest}", allow_devices=allow_devices)


def read_files(layers: Sequence[Layer], paths: Sequence[str], *, max_size: int = 16 << 20) -> dict[str, bytes]:
    """Contents of ``paths`` (in-image, e.g. ``/etc/os-release``) in the merged filesystem of ``layers``.

    Later layers win; whiteouts delete. Symlinks are not followed (ask for the real path). Devices
    are tolerated here since nothing is extracted; every other safety rule applies.
    """
    wanted = {_norm(p.lstrip("/"), "request"): p for p in paths}
    found: dict[str, bytes] = {}
    for layer in layers:
        for e in iter_layer(layer, allow_devices=True):
            parent, base = str(PurePosixPath(e.path).parent), PurePosixPath(e.path).name
            if e.kind == "whiteout":
                gone = str(PurePosixPath(parent) / base[len(WHITEOUT_PREFIX) :]).lstrip("./")
                for k in [k for k in found if k == gone or k.startswith(gone + "/")]:
                    del found[k]
            elif e.kind == "opaque":
                prefix = "" if parent == "." else parent + "/"
                for k in [k for k in found if k.startswith(prefix)]:
                    del found[k]
            elif e.path in wanted:
                if e.kind == "file" and e.open is not None:
                    if e.size > max_size:
                        raise OCIError(f"layer {layer.digest}: {e.path} is larger than {max_size} bytes")
                    found[e.path] = e.open().read()
                else:
                    found.pop(e.path, None)
    return {wanted[k]: v for k, v in found.items()}
