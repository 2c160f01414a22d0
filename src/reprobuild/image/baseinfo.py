"""What a base image offers Python, read from its layers without running it.

The layers are overlaid in order (whiteouts applied) for the few paths that matter: the interpreter
(``/usr/local/bin/python3*``, ``/usr/bin/python3*``, following symlinks inside the image), the
``lib/python3.X`` directories, dpkg's status file (Python and glibc package versions on Debian and
Ubuntu bases), ``libc.so.6`` and ``os-release``. The image config's ``PYTHON_VERSION`` (set by the
official python images) is used when dpkg does not know the interpreter.
"""

from __future__ import annotations

import functools
import hashlib
import io
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from reprobuild.config import Target
from reprobuild.errors import BaseImageError
from reprobuild.image.pyenv import ImagePaths
from reprobuild.oci.layer import Layer
from reprobuild.oci.safetar import OPAQUE, WHITEOUT_PREFIX, SafeEntry, iter_layer_entries

_INTERESTING = re.compile(
    r"^(usr/(local/)?bin/python3(\.\d+)?|usr/(local/)?lib/python3(\.\d+)?|usr/lib/python3/dist-packages"
    r"|var/lib/dpkg/status|(usr/)?lib(64)?(/[a-z0-9_]+-linux-gnu)?/libc\.so\.6|(etc|usr/lib)/os-release"
    r"|lib|lib64|bin)$"
)
_LIBC_VERSION_RE = re.compile(rb"GNU C Library \([^)]*\) (?:stable )?release version (\d+)\.(\d+)")
_DPKG_VERSION_RE = re.compile(r"^(?:\d+:)?(\d+\.\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class BaseInfo:
    """Facts about a base image's Python and C library."""

    interpreter: str
    python_version: str  # X.Y or X.Y.Z
    site_packages: str
    glibc: tuple[int, int] | None
    os_release: Mapping[str, str]

    @property
    def python_minor(self) -> str:
        return ".".join(self.python_version.split(".")[:2])

    def paths(self) -> ImagePaths:
        return ImagePaths(self.interpreter, self.site_packages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "glibc": f"{self.glibc[0]}.{self.glibc[1]}" if self.glibc else None,
            "interpreter": self.interpreter,
            "os": self.os_release.get("PRETTY_NAME"),
            "python": self.python_version,
            "site-packages": self.site_packages,
        }


@dataclass
class _Node:
    kind: str
    target: str | None
    data: bytes | None


class _HashingReader:
    """Reads through to a file and hashes everything read (the layer's diff_id, checked in passing)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._h.update(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self._h.hexdigest()


def _overlay(layers: Sequence[Layer]) -> dict[str, _Node]:
    """The interesting nodes of the merged filesystem; each layer's diff_id is checked on the way."""
    nodes: dict[str, _Node] = {}
    for layer in layers:
        with layer.open_uncompressed() as raw:
            reader = _HashingReader(raw)
            entries = list(_interesting(reader, layer))
            diff_id = reader.drain()
        if diff_id != str(layer.diff_id):
            raise BaseImageError(
                f"base layer {layer.digest} uncompresses to {diff_id}, but the config says {layer.diff_id}",
                hint="the base image is corrupt or forged; do not use it",
            )
        for e in entries:
            parent, base = posixpath.split(e.path)
            if e.kind == "whiteout":
                gone = posixpath.join(parent, base[len(WHITEOUT_PREFIX) :])
                for key in [k for k in nodes if k == gone or k.startswith(gone + "/")]:
                    del nodes[key]
                continue
            if e.kind == "opaque" or base == OPAQUE:
                for key in [k for k in nodes if parent and k.startswith(parent + "/")]:
                    del nodes[key]
                continue
            if not _INTERESTING.match(e.path):
                continue
            data = None
            if e.kind == "file" and e.open is not None and (e.path.endswith(("status", "os-release", "libc.so.6"))):
                data = e.open().read()  # an in-memory copy taken while the stream was at this entry
            nodes[e.path] = _Node(e.kind, e.target, data)
    return nodes


def _interesting(reader: _HashingReader, layer: Layer) -> Iterator[SafeEntry]:
    """Every entry of the layer (checked by the safe reader), with the bodies of interesting files read."""
    for e in iter_layer_entries(reader, artifact=f"layer {layer.digest}", allow_devices=True):  # type: ignore[arg-type]
        if (
            e.kind == "file"
            and e.open is not None
            and _INTERESTING.match(e.path)
            and e.path.endswith(("status", "os-release", "libc.so.6"))
        ):
            body = e.open().read()
            yield SafeEntry(e.path, e.kind, e.mode, e.size, e.uid, e.gid, e.target, functools.partial(io.BytesIO, body))
        else:
            yield e


def _resolve(nodes: Mapping[str, _Node], path: str) -> tuple[str, _Node] | None:
    """Follow symlinks (absolute ones inside the image root) and symlinked parents, at most 16 hops."""
    for _ in range(16):
        node = nodes.get(path)
        if node is not None and node.kind == "symlink" and node.target:
            target = node.target
            path = posixpath.normpath(
                target.lstrip("/") if target.startswith("/") else posixpath.join(posixpath.dirname(path), target)
            )
            continue
        if node is not None:
            return path, node
        # A parent directory may be a symlink (usrmerge: /lib -> usr/lib).
        head, _, rest = path.partition("/")
        parent = nodes.get(head)
        if rest and parent is not None and parent.kind == "symlink" and parent.target:
            path = posixpath.normpath(posixpath.join(parent.target.lstrip("/"), rest))
            continue
        return None
    return None


def _dpkg_versions(status: bytes | None) -> dict[str, str]:
    versions: dict[str, str] = {}
    if not status:
        return versions
    for stanza in status.decode("utf-8", "replace").split("\n\n"):
        fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith(" "))
        name, version = fields.get("Package", "").strip(), fields.get("Version", "").strip()
        if name and version and "installed" in fields.get("Status", "installed"):
            versions[name] = version
    return versions


def inspect_base(layers: Sequence[Layer], config: Mapping[str, Any], *, name: str) -> BaseInfo:
    """Inspect ``layers`` (bottom first); ``name`` identifies the base in errors."""
    nodes = _overlay(layers)
    interpreter = None
    for candidate in ("usr/local/bin/python3", "usr/bin/python3"):
        found = _resolve(nodes, candidate)
        if found is not None and found[1].kind in ("file", "hardlink"):
            interpreter = found[0]
            break
    if interpreter is None:
        raise BaseImageError(
            f"base {name} has no Python interpreter (no /usr/local/bin/python3 or /usr/bin/python3)",
            hint='use a base with Python, e.g. `base = "debian:bookworm"` or a python:3.X-slim image by digest',
        )
    m = re.search(r"python(3\.\d+)$", interpreter)
    if not m:
        raise BaseImageError(f"base {name}: cannot tell the Python version of /{interpreter}")
    minor = m.group(1)
    dpkg = _dpkg_versions(nodes["var/lib/dpkg/status"].data if "var/lib/dpkg/status" in nodes else None)
    version = minor
    env = {k: v for k, _, v in (e.partition("=") for e in (config.get("config", {}) or {}).get("Env", []) or [])}
    for package in (f"python{minor}-minimal", f"libpython{minor}-minimal", f"python{minor}"):
        if package in dpkg and interpreter.startswith("usr/bin/"):
            dm = _DPKG_VERSION_RE.match(dpkg[package])
            if dm and dm.group(1).startswith(minor):
                version = dm.group(1)
                break
    else:
        if env.get("PYTHON_VERSION", "").startswith(minor + "."):
            version = env["PYTHON_VERSION"]
    prefix = posixpath.dirname(posixpath.dirname(interpreter))  # usr or usr/local
    if prefix == "usr" and "usr/lib/python3/dist-packages" in nodes:
        site = f"/usr/local/lib/python{minor}/dist-packages"  # Debian's site.py puts this on sys.path
    else:
        site = f"/{prefix}/lib/python{minor}/site-packages"
    glibc: tuple[int, int] | None = None
    if "libc6" in dpkg:
        dm = _DPKG_VERSION_RE.match(dpkg["libc6"])
        if dm:
            major, minor_c = dm.group(1).split(".")[:2]
            glibc = (int(major), int(minor_c))
    if glibc is None:
        for path in (
            "usr/lib/x86_64-linux-gnu/libc.so.6",
            "usr/lib/aarch64-linux-gnu/libc.so.6",
            "lib/libc.so.6",
            "usr/lib64/libc.so.6",
        ):
            found = _resolve(nodes, path)
            if found is not None and found[1].data:
                lm = _LIBC_VERSION_RE.search(found[1].data)
                if lm:
                    glibc = (int(lm.group(1)), int(lm.group(2)))
                    break
    os_release: dict[str, str] = {}
    for path in ("etc/os-release", "usr/lib/os-release"):
        found = _resolve(nodes, path)
        if found is not None and found[1].data:
            for line in found[1].data.decode("utf-8", "replace").splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    os_release[key.strip()] = value.strip().strip('"')
            break
    return BaseInfo("/" + interpreter, version, site, glibc, os_release)


def check_base(info: BaseInfo, target: Target, *, name: str) -> None:
    """Refuse a base whose Python or glibc does not match what the target's lock was resolved for."""
    want_minor = ".".join(target.python.split(".")[:2])
    if info.python_minor != want_minor or (
        target.python.count(".") == 2 and info.python_version.count(".") == 2 and info.python_version != target.python
    ):
        raise BaseImageError(
            f"target {target.name!r} is locked for Python {target.python}, but base {name} has Python "
            f"{info.python_version} ({info.interpreter})",
            hint=f'set `python = "{info.python_minor}"` for the target and run `repro-build lock`, '
            "or choose a base with the locked Python",
        )
    need = int(target.manylinux.rsplit("_", 1)[1])
    if info.glibc is not None and (info.glibc[0] != 2 or info.glibc[1] < need):
        raise BaseImageError(
            f"target {target.name!r} installs {target.manylinux} wheels (glibc >= 2.{need}), but base {name} "
            f"has glibc {info.glibc[0]}.{info.glibc[1]}",
            hint=f'lower `manylinux` to `"manylinux_2_{info.glibc[1]}"` and re-lock, or choose a newer base',
        )
