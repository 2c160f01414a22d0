"""What an image holds, as the SBOMs list it: the base's Debian packages, the locked wheels, the project.

Debian packages are read from the base's own layers (never by running it): dpkg's database
(``/var/lib/dpkg/status``, and ``/var/lib/dpkg/status.d/*`` as distroless bases keep it) in the merged
filesystem gives each installed package's name, version, architecture and source package; the
package's ``/usr/share/doc/<name>/copyright`` gives its licence (:mod:`reprobuild.attest.debcopyright`).
When the base was built from a base lock (``base = "debian:SUITE"``), each package also gets the
sha256 of its ``.deb`` and its pool file name from that lock.

Wheels come from the build's verified wheel files: name, version, file name and sha256 as pinned in
the lock, and the licence from the wheel's ``METADATA``: ``License-Expression`` (core metadata 2.4),
else a ``License`` field that is itself a valid SPDX expression (``MIT``); else none.
"""

from __future__ import annotations

import email.parser
import json
import posixpath
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

from reprobuild.attest.debcopyright import declared_license
from reprobuild.base.debian.deb822 import iter_stanzas
from reprobuild.errors import BaseImageError
from reprobuild.oci.layer import Layer
from reprobuild.oci.safetar import OPAQUE, WHITEOUT_PREFIX, iter_layer

#: The files of the base read for the inventory (paths inside the image, no leading ``/``).
_STATUS = "var/lib/dpkg/status"
_STATUS_D = re.compile(r"^var/lib/dpkg/status\.d/[^/]+$")
_COPYRIGHT = re.compile(r"^usr/share/doc/([^/]+)/copyright$")
_DOC_DIR = re.compile(r"^usr/share/doc/[^/]+$")
#: Largest file read into memory: dpkg status of a full desktop is ~5 MB; a copyright file rarely 1 MB.
_MAX_FILE = 16 << 20
#: Largest copyright file read (a larger one counts as missing: NOASSERTION) and the most bytes all of them
#: may take together; Debian 12's whole archive has no copyright file above 1 MiB, and a hostile base with
#: thousands of large ones must not exhaust memory.
_MAX_COPYRIGHT = 1 << 20
_MAX_COPYRIGHT_TOTAL = 256 << 20


@dataclass(frozen=True)
class DebPackage:
    """One installed Debian package of the base."""

    name: str
    version: str
    architecture: str
    source: str | None
    license: str | None  # an SPDX expression, or None (NOASSERTION)
    sha256: str | None = None  # of the .deb, from the base lock
    filename: str | None = None  # the .deb's pool path, from the base lock


@dataclass(frozen=True)
class WheelPackage:
    """One wheel installed in the image (a locked dependency or the project's own)."""

    name: str
    version: str
    filename: str
    sha256: str
    license: str | None


@dataclass(frozen=True)
class OsInfo:
    """``/etc/os-release`` facts the purls need: ``ID`` (the purl namespace) and the release name."""

    id: str
    version_codename: str | None
    pretty_name: str | None


@dataclass(frozen=True)
class BaseInventory:
    os: OsInfo | None
    packages: tuple[DebPackage, ...]


def _status_packages(texts: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    out = []
    for origin, text in texts:
        try:
            stanzas = list(iter_stanzas(text, origin))
        except BaseImageError as e:
            raise e.with_context("reading the base's dpkg database") from e
        for stanza in stanzas:
            status = stanza.get("Status", "install ok installed")
            if stanza.get("Package") and stanza.get("Version") and status.endswith(" installed"):
                out.append(stanza)
    return out


def _source_name(stanza: Mapping[str, str]) -> str | None:
    source = stanza.get("Source", "").split(" ", 1)[0].strip()
    return source or None


def read_base(layers: Sequence[Layer], *, lock: Mapping[str, Any] | None = None) -> BaseInventory:
    """The Debian packages installed in the merged filesystem of ``layers`` (empty for a non-Debian base)."""
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    total = 0
    for layer in layers:
        for e in iter_layer(layer, allow_devices=True):
            parent, base = posixpath.split(e.path)
            if e.kind == "whiteout":
                gone = posixpath.join(parent, base[len(WHITEOUT_PREFIX) :])
                for table in (files, links):
                    for key in [k for k in table if k == gone or k.startswith(gone + "/")]:
                        del table[key]
                continue
            if e.kind == "opaque" or base == OPAQUE:
                for table in (files, links):
                    for key in [k for k in table if parent and k.startswith(parent + "/")]:
                        del table[key]
                continue
            wanted = (
                e.path == _STATUS
                or _STATUS_D.match(e.path)
                or _COPYRIGHT.match(e.path)
                or e.path in ("etc/os-release", "usr/lib/os-release")
            )
            if e.kind == "symlink" and e.target and (_DOC_DIR.match(e.path) or _COPYRIGHT.match(e.path)):
                links[e.path] = e.target
                files.pop(e.path, None)
            elif wanted and e.kind == "file" and e.open is not None and e.size <= _limit(e.path):
                total += e.size
                if total > _MAX_COPYRIGHT_TOTAL:
                    raise BaseImageError(
                        f"the base's dpkg database and copyright files exceed {_MAX_COPYRIGHT_TOTAL >> 20} MiB "
                        f"(at {e.path} in layer {layer.digest})",
                        hint="the base is hostile or not a Debian system; use a base by digest that you trust",
                    )
                files[e.path] = e.open().read()
                links.pop(e.path, None)
            elif wanted:
                files.pop(e.path, None)
    texts = [
        (f"/{p}", files[p].decode("utf-8", "replace")) for p in sorted(files) if p == _STATUS or _STATUS_D.match(p)
    ]
    stanzas = _status_packages(texts)
    pinned = {(p["name"], p["version"], p["architecture"]): p for p in (lock or {}).get("packages", [])}
    packages = []
    for stanza in stanzas:
        name, version, arch = stanza["Package"], stanza["Version"], stanza.get("Architecture", "")
        copyright_text = _copyright(files, links, name)
        licence = (
            declared_license(copyright_text, origin=f"/usr/share/doc/{name}/copyright") if copyright_text else None
        )
        pin = pinned.get((name, version, arch))
        packages.append(
            DebPackage(
                name,
                version,
                arch,
                _source_name(stanza),
                licence,
                str(pin["sha256"]) if pin else None,
                str(pin["filename"]) if pin else None,
            )
        )
    packages.sort(key=lambda p: (p.name, p.architecture, p.version))
    return BaseInventory(_os_info(files), tuple(packages))


def _limit(path: str) -> int:
    return _MAX_COPYRIGHT if _COPYRIGHT.match(path) else _MAX_FILE


def _copyright(files: Mapping[str, bytes], links: Mapping[str, str], package: str) -> str | None:
    """The copyright file of ``package``, following a symlinked doc directory or file (one hop each)."""
    directory = f"usr/share/doc/{package}"
    if directory in links:
        target = links[directory]
        directory = posixpath.normpath(
            target.lstrip("/") if target.startswith("/") else posixpath.join("usr/share/doc", target)
        )
    path = f"{directory}/copyright"
    if path in links:
        target = links[path]
        path = posixpath.normpath(target.lstrip("/") if target.startswith("/") else posixpath.join(directory, target))
    data = files.get(path)
    return data.decode("utf-8", "replace") if data is not None else None


def _os_info(files: Mapping[str, bytes]) -> OsInfo | None:
    for path in ("etc/os-release", "usr/lib/os-release"):
        if path in files:
            fields = {}
            for line in files[path].decode("utf-8", "replace").splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    fields[key.strip()] = value.strip().strip('"')
            if fields.get("ID"):
                return OsInfo(fields["ID"], fields.get("VERSION_CODENAME") or None, fields.get("PRETTY_NAME"))
    return None


def read_lock(path: Path) -> dict[str, Any] | None:
    """A base lock's JSON (for the ``.deb`` hashes), or None when it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def spdx_or_none(text: str | None) -> str | None:
    """``text`` canonicalised when it is a valid SPDX licence expression, else None."""
    if not text or "\n" in text.strip() or len(text) > 200:
        return None
    try:
        return str(canonicalize_license_expression(text.strip()))
    except InvalidLicenseExpression:
        return None


def wheel_license(path: Path) -> str | None:
    """The SPDX licence a wheel's ``METADATA`` declares (module docstring), or None."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(names) != 1:
                return None
            info = zf.getinfo(names[0])
            if info.file_size > _MAX_FILE:
                return None
            text = zf.read(info).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile):
        return None
    metadata = email.parser.HeaderParser().parsestr(text)
    return spdx_or_none(metadata.get("License-Expression")) or spdx_or_none(metadata.get("License"))
