"""From read ``.deb`` files to the entries of a runtime root file system, without maintainer scripts.

What a ``dpkg --unpack`` would do, minus every script, plus the few files a runtime needs from
those scripts, written deterministically (like Google's distroless images):

* **Merged /usr** (Debian's layout since bookworm, as debootstrap and mmdebstrap make it): entries
  under ``/bin``, ``/sbin``, ``/lib``, ``/lib32``, ``/lib64``, ``/libx32`` are placed under ``/usr``
  and the top-level names become symlinks (``bin -> usr/bin``). A relative symlink that moves is
  re-targeted so it still points at the same file.
* **Ownership and modes**: every entry is owned by 0:0 (Debian packages ship root-owned files; the
  few group-owned ones are setgid helpers, see next). Permission bits are kept as packaged, so
  ``/tmp`` stays 1777 and ``/root`` 0700. **setuid/setgid bits are dropped** from files (a runtime
  image runs no privilege-changing helper) and directories (setgid there only served the group
  owners normalised away, e.g. base-files' ``/var/local`` 2775 root:staff); every such path is
  listed in :attr:`Rootfs.dropped_setid` and the build info.
* **mtimes** are the packaged ones, clamped to the build epoch by the layer writer; generated
  files get the epoch.
* **Refused or skipped**: a path with ``..`` is an error naming the package; character/block devices
  and FIFOs are skipped and listed (the container runtime provides /dev); absolute symlinks are kept
  as links (they resolve inside the container's root).
* **Two packages shipping one path**: directories merge; identical files or links are fine; any
  other clash is an error naming both packages (dpkg would refuse it too unless ``Replaces``).
* **Generated**: ``/etc/passwd`` and ``/etc/group`` (``root`` 0 and ``nonroot`` 65532, shells
  ``/sbin/nologin``), ``/etc/nsswitch.conf`` when no package ships one, ``/home/nonroot`` (0700,
  owned by 65532), the CA bundle ``/etc/ssl/certs/ca-certificates.crt`` (every
  ``/usr/share/ca-certificates/**.crt`` in sorted path order, each ending in a newline, as
  ``update-ca-certificates`` writes it), and the dpkg database (``/var/lib/dpkg/status`` sorted by
  package, ``info/<pkg>.list`` and ``info/<pkg>.md5sums``) that scanners such as trivy and grype read.
* No ``.pyc`` files are generated: Debian builds them in ``python3.X``'s postinst. An image build
  adds them as a layer of its own on top of this one (:mod:`reprobuild.image.stdlibbytecode`), so
  this layer stays the ``.deb`` files' contents.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, replace

from reprobuild.base.debian.deb import Deb
from reprobuild.base.debian.deb822 import format_stanza
from reprobuild.errors import BaseImageError
from reprobuild.oci.tarwriter import LayerEntry

#: Top-level directories that merged /usr turns into symlinks into /usr (usrmerge's list).
MERGED_DIRS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")

#: distroless's unprivileged user and group id; ``docker run --user 65532`` and ``USER nonroot``.
NONROOT_ID = 65532

_PASSWD = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
_GROUP = "root:x:0:\nnonroot:x:65532:\n"
# glibc's defaults made explicit: local files first, DNS for hosts (what Debian's base-files installs).
_NSSWITCH = (
    "passwd:         files\ngroup:          files\nshadow:         files\ngshadow:        files\n\n"
    "hosts:          files dns\nnetworks:       files\n\nprotocols:      files\nservices:       files\n"
    "ethers:         files\nrpc:            files\n"
)
_CA_DIR = "usr/share/ca-certificates/"
_CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Rootfs:
    """The root file system's entries and what was changed on the way, for the build info."""

    entries: tuple[LayerEntry, ...]
    dropped_setid: tuple[str, ...]
    skipped_devices: tuple[str, ...]
    generated: tuple[str, ...]


def _merge_usr(path: str) -> str:
    head, _, rest = path.partition("/")
    if head in MERGED_DIRS:
        return f"usr/{head}/{rest}" if rest else f"usr/{head}"
    return path


def _clean(name: str, origin: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise BaseImageError(
            f"{origin}: the entry {name!r} contains `..`; it would escape the image root",
            hint="the package is malformed or hostile; it is refused",
        )
    if any("\0" in p for p in parts):
        raise BaseImageError(f"{origin}: the entry {name!r} contains a NUL byte")
    return "/".join(parts)


def _retarget(original: str, moved: str, target: str) -> str:
    """Keep a relative symlink pointing at the same file after it moved (merged /usr)."""
    if target.startswith("/") or original == moved:
        return target
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(original), target))
    if resolved.startswith("../") or resolved == "..":
        return target  # points above the root: keep as written, it stays inside at run time
    return posixpath.relpath(_merge_usr(resolved), posixpath.dirname(moved) or ".")


def _same(a: LayerEntry, b: LayerEntry) -> bool:
    return (a.kind, a.content, a.target, a.mode) == (b.kind, b.content, b.target, b.mode)


class _Tree:
    def __init__(self) -> None:
        self.entries: dict[str, LayerEntry] = {}
        self.owner: dict[str, str] = {}
        self.dropped_setid: list[str] = []
        self.skipped: list[str] = []

    def put(self, entry: LayerEntry, package: str) -> None:
        existing = self.entries.get(entry.path)
        if existing is None:
            self.entries[entry.path] = entry
            self.owner[entry.path] = package
            return
        if existing.kind == "dir" and entry.kind == "dir":
            return  # first package's directory metadata wins (packages are visited by name)
        if _same(existing, entry):
            return
        raise BaseImageError(
            f"`/{entry.path}` is shipped by both `{self.owner[entry.path]}` and `{package}` with different content",
            hint="dpkg would refuse this set too; drop one of the packages from the base",
        )

    def add_deb(self, name: str, deb: Deb) -> list[str]:
        """Add one package's data entries; return its dpkg ``.list`` paths (as packaged)."""
        listed: list[str] = []
        origin = f"package `{name}`"
        for member in deb.members:
            info = member.info
            original = _clean(info.name, origin)
            listed.append("/" + original if original else "/.")
            if not original:
                continue
            path = _merge_usr(original)
            mode = info.mode & 0o7777
            if mode & 0o6000 and (info.isreg() or info.isdir()):
                self.dropped_setid.append(f"/{path} ({oct(mode)}, from {name})")
                mode &= ~0o6000
            if info.isdir():
                entry = LayerEntry(path, "dir", mode, mtime=int(info.mtime))
            elif info.isreg():
                entry = LayerEntry(path, "file", mode, member.data, mtime=int(info.mtime))
            elif info.issym():
                target = _retarget(original, path, info.linkname)
                entry = LayerEntry(path, "symlink", 0o777, target=target, mtime=int(info.mtime))
            elif info.islnk():
                target = _merge_usr(_clean(info.linkname, origin))
                entry = LayerEntry(path, "hardlink", mode, target=target, mtime=int(info.mtime))
            elif info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
                self.skipped.append(f"/{original} (from {name})")
                continue
            else:
                raise BaseImageError(f"{origin}: the entry {info.name!r} has unsupported tar type {info.type!r}")
            self.put(entry, name)
        return listed


def _status_stanza(deb: Deb) -> str:
    fields: list[tuple[str, str]] = []
    for key, value in deb.control:
        fields.append((key, value))
        if key == "Package":
            # dpkg writes Status right after Package; "install ok installed" is a configured package.
            fields.append(("Status", "install ok installed"))
    return format_stanza(fields)


def _ca_bundle(entries: dict[str, LayerEntry]) -> bytes | None:
    certs = sorted(
        (p for p, e in entries.items() if p.startswith(_CA_DIR) and p.endswith(".crt") and e.kind == "file"),
        key=lambda p: p.encode(),
    )
    if not certs:
        return None
    parts: list[bytes] = []
    for path in certs:
        content = entries[path].content
        assert isinstance(content, bytes)
        parts.append(content if content.endswith(b"\n") else content + b"\n")
    return b"".join(parts)


def assemble_rootfs(debs: Sequence[tuple[str, Deb]], epoch: int) -> Rootfs:
    """Unpack ``debs`` (``(name, Deb)`` sorted by name) into rootfs entries and add the generated files.

    ``epoch`` is the mtime of every generated file. Raises :class:`BaseImageError` for ``..``
    entries and for clashing files.
    """
    tree = _Tree()
    lists: dict[str, list[str]] = {}
    for name, deb in sorted(debs, key=lambda d: d[0]):
        lists[name] = tree.add_deb(name, deb)

    generated: list[str] = []

    def generate(entry: LayerEntry) -> None:
        tree.entries[entry.path] = replace(entry, mtime=epoch)
        generated.append("/" + entry.path)

    used = {p.split("/", 2)[1] for p in tree.entries if p.startswith("usr/") and p.count("/") >= 1}
    for top in MERGED_DIRS:
        usr = f"usr/{top}"
        if top in used or top in ("bin", "lib", "sbin"):
            if usr not in tree.entries:
                generate(LayerEntry(usr, "dir", 0o755))
            generate(LayerEntry(top, "symlink", 0o777, target=usr))
    generate(LayerEntry("etc/passwd", "file", 0o644, _PASSWD.encode()))
    generate(LayerEntry("etc/group", "file", 0o644, _GROUP.encode()))
    if "etc/nsswitch.conf" not in tree.entries:
        generate(LayerEntry("etc/nsswitch.conf", "file", 0o644, _NSSWITCH.encode()))
    if "home" not in tree.entries:
        generate(LayerEntry("home", "dir", 0o755))
    generate(LayerEntry("home/nonroot", "dir", 0o700, uid=NONROOT_ID, gid=NONROOT_ID))
    for path, mode in (("tmp", 0o1777), ("root", 0o700)):
        if path not in tree.entries:
            generate(LayerEntry(path, "dir", mode))
    bundle = _ca_bundle(tree.entries)
    if bundle is not None:
        generate(LayerEntry(_CA_BUNDLE, "file", 0o644, bundle))

    status = "\n".join(_status_stanza(deb) for _, deb in sorted(debs, key=lambda d: d[0]))
    generate(LayerEntry("var/lib/dpkg/status", "file", 0o644, status.encode()))
    for name, deb in debs:
        listing = "".join(f"{p}\n" for p in lists[name])
        generate(LayerEntry(f"var/lib/dpkg/info/{name}.list", "file", 0o644, listing.encode()))
        md5sums = deb.control_files.get("md5sums")
        if md5sums is not None:
            generate(LayerEntry(f"var/lib/dpkg/info/{name}.md5sums", "file", 0o644, md5sums))

    return Rootfs(
        entries=tuple(tree.entries.values()),
        dropped_setid=tuple(sorted(tree.dropped_setid)),
        skipped_devices=tuple(sorted(tree.skipped)),
        generated=tuple(sorted(generated)),
    )
