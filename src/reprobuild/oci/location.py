"""Image locations: the one grammar every command and a target's ``base`` accept (skopeo's transport names).

- ``oci:DIR[:TAG|@DIGEST]`` (also ``oci-layout:``): an OCI image layout directory.
- ``oci-archive:FILE[:TAG|@DIGEST]``: one tar that is an OCI layout (ours is also a ``docker load`` archive).
- ``docker-archive:FILE[:TAG|@DIGEST]``: a ``docker save`` tar (the same reader takes an OCI archive).
- ``docker-daemon:NAME[:TAG]``: the Docker engine.
- ``docker://HOST/NAME[:TAG|@DIGEST]`` or plain ``HOST/NAME[:TAG|@DIGEST]``: a registry.
- A bare path that exists: a directory is an OCI layout, a ``.tar`` file an archive; ``PATH:TAG`` and
  ``PATH@DIGEST`` when ``PATH`` is one of these.

A bare name is a registry reference only when no such file or directory exists (relative to
``relative_to``, the working directory by default): what is on disk is never sent to a registry, and a
name that is plainly a path (``./x``, ``../x``, ``/x``, ``~/x``) but does not exist is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reprobuild.errors import ConfigError
from reprobuild.oci.digest import Digest
from reprobuild.oci.reference import TAG_RE, Reference, parse_reference
from reprobuild.urls import has_userinfo, redact_text

#: The forms, for ``--help`` (one line each command shows the same way).
FORMS = (
    "oci:DIR[:TAG|@sha256:…], oci-archive:FILE[:TAG], docker-archive:FILE, docker-daemon:NAME[:TAG], "
    "docker://HOST/NAME[:TAG|@sha256:…] or HOST/NAME[:TAG|@sha256:…], or an existing layout DIR or .tar FILE"
)

Kind = Literal["oci-layout", "oci-archive", "docker-archive", "docker-daemon", "registry"]

#: Prefix -> kind, for the forms that name a file or a directory.
_PATH_TRANSPORTS: tuple[tuple[str, Kind], ...] = (
    ("oci-layout:", "oci-layout"),
    ("oci:", "oci-layout"),
    ("oci-archive:", "oci-archive"),
    ("docker-archive:", "docker-archive"),
)
#: Every transport prefix of the grammar, the path forms' and the engine's and registry's.
TRANSPORTS: tuple[str, ...] = (*(prefix for prefix, _ in _PATH_TRANSPORTS), "docker-daemon:", "docker://")
_HINT = "e.g. `oci:build/cpu/oci`, `oci-archive:image.tar`, `docker-daemon:app:cpu` or `docker://ghcr.io/org/app:1`"


@dataclass(frozen=True)
class Location:
    """A parsed image location."""

    kind: Kind
    path: Path | None = None
    tag: str | None = None
    digest: Digest | None = None
    reference: Reference | None = None
    name: str | None = None  # docker-daemon NAME[:TAG]

    @property
    def is_archive(self) -> bool:
        """An ``oci-archive:`` or ``docker-archive:`` tar (one reader and one writer serve both)."""
        return self.kind in ("oci-archive", "docker-archive")

    @property
    def is_local(self) -> bool:
        """A layout or an archive: a file or directory here, not the engine or a registry."""
        return self.path is not None

    def __str__(self) -> str:
        if self.kind == "registry":
            assert self.reference is not None
            return str(self.reference)
        if self.kind == "docker-daemon":
            return f"docker-daemon:{self.name}"
        out = f"{self.kind}:{self.path}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def pinned(self, digest: Digest) -> str:
        """What ``copy`` prints: the destination name pinned to ``digest``."""
        if self.kind == "registry":
            assert self.reference is not None
            return f"{self.reference.name}@{digest}"
        if self.kind == "docker-daemon":
            return f"docker-daemon:{self.name}@{digest}"
        return f"{self.kind}:{self.path}@{digest}"


def _split_path_ref(text: str, origin: str) -> tuple[str, str | None, Digest | None]:
    """``PATH[:TAG|@DIGEST]`` -> (path, tag, digest)."""
    path, at, tail = text.rpartition("@")
    if at and tail.startswith(("sha256:", "sha512:")):
        return path, None, Digest.parse(tail, origin=origin)  # raises, naming it, when malformed
    path, sep, tag = text.rpartition(":")
    if sep and path and "/" not in tag and TAG_RE.match(tag):
        return path, tag, None
    return text, None, None


def _path(text: str, origin: str) -> Path:
    """``text`` as a path, ``~`` and ``~user`` expanded."""
    try:
        return Path(text).expanduser()
    except RuntimeError as e:  # `~user` of no user here
        raise ConfigError(f"{origin}: {text!r} starts with a home directory this machine does not have") from e


def _plainly_a_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or text in (".", "..")


def _bare_path(text: str, base: Path, origin: str) -> Location | None:
    """The layout or archive a bare ``text`` names on disk, or None when nothing there matches."""
    candidates: list[tuple[str, str | None, Digest | None]] = [(text, None, None)]
    path, tag, digest = _split_path_ref(text, origin)
    if (tag or digest) and path:
        candidates.append((path, tag, digest))
    for name, tag_, digest_ in candidates:
        path_ = _path(name, origin)
        where = base / path_
        try:
            where.lstat()
        except OSError:  # absent, or a name no file can have (too long, …): not a path here
            continue
        if where.is_dir():
            if not (where / "oci-layout").is_file():
                raise ConfigError(
                    f"{origin}: {name!r} is a directory here but not an OCI image layout (it has no `oci-layout`)",
                    hint=f"name a layout directory, or write `docker://{text}` for the registry image",
                )
            return Location("oci-layout", path_, tag_, digest_)
        if where.is_file():
            if not name.endswith(".tar"):
                raise ConfigError(
                    f"{origin}: {name!r} is a file here, not a `.tar` archive",
                    hint=f"write `oci-archive:{name}` to read it as an archive, or `docker://{text}` for the "
                    "registry image",
                )
            return Location("oci-archive", path_, tag_, digest_)
        raise ConfigError(f"{origin}: {name!r} is neither a directory nor a file (a dangling link?)", hint=_HINT)
    return None


def without_transport(text: str) -> str:
    """``text`` without its transport prefix (``oci:``, ``docker-daemon:``, ``docker://``, …), if it has one:
    what names the image in the location, for a label. Nothing is checked."""
    for prefix in TRANSPORTS:
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def parse_location(text: str, *, relative_to: Path | None = None, origin: str | None = None) -> Location:
    """Parse an image location; raise :class:`ConfigError` naming it (or ``origin``) when malformed.

    Bare paths are looked up relative to ``relative_to`` (default: the working directory); the
    returned :attr:`Location.path` is as written, still relative.
    """
    if has_userinfo(text):
        raise ConfigError(
            f"image location {redact_text(text)!r} carries credentials (`user:password@`); a reference never does",
            hint="log in with `docker login HOST`, or set REPRO_BUILD_REGISTRY_USERNAME and "
            "REPRO_BUILD_REGISTRY_PASSWORD",
        )
    origin = origin or f"image location {text!r}"
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ConfigError(f"{origin}: an image location is a non-empty line of printable text", hint=_HINT)
    for prefix, kind in _PATH_TRANSPORTS:
        if text.startswith(prefix):
            path, tag, digest = _split_path_ref(text[len(prefix) :], origin)
            if not path:
                raise ConfigError(f"{origin} has no path", hint=f"e.g. `{prefix}build/cpu/oci`")
            return Location(kind, _path(path, origin), tag, digest)
    if text.startswith("docker-daemon:"):
        name = text[len("docker-daemon:") :]
        ref = parse_reference(name, origin=origin)
        if ref.digest:
            raise ConfigError(f"{origin}: the engine is addressed by name:tag, not by digest")
        return Location("docker-daemon", name=name if ref.tag else f"{name}:latest")
    if text.startswith("docker://"):
        return _registry(text.removeprefix("docker://"), origin)
    local = _bare_path(text, relative_to or Path(), origin)
    if local is not None:
        return local
    if _plainly_a_path(text):
        where = f" (relative to {relative_to})" if relative_to is not None else ""
        raise ConfigError(f"{origin}: {text!r} does not exist{where}", hint=_HINT)
    if "://" in text or _bad_host_port(text):
        # A mistyped transport with a path (`oci-layuot:dir/sub`) is no registry host.
        raise ConfigError(
            f"{origin} is not a known transport",
            hint="use oci:, oci-archive:, docker-archive:, docker-daemon:, docker:// or an existing path",
        )
    if ":" in text and "/" not in text and "@" not in text:
        # `word:word` is a mistyped transport (`oci-layuot:dir`) as often as a Docker Hub `name:tag`: only an
        # explicit `docker://` (or a digest) sends it to Docker Hub.
        raise ConfigError(
            f"{origin} is not a known transport, nor an existing path",
            hint=f"for the Docker Hub image write `docker://{text}`, or pin it: `{text}@sha256:<64 hex>`; "
            "transports: oci:, oci-archive:, docker-archive:, docker-daemon:, docker://",
        )
    return _registry(text, origin)


def _bad_host_port(text: str) -> bool:
    """Whether ``text`` starts like ``word:...`` without being ``host:port/...`` (or ``[v6]:port/...``)."""
    first = text.split("/", 1)[0]
    if ":" not in first or "/" not in text:
        return False
    if first.startswith("[") and first.endswith("]"):
        return False
    return not first.rsplit(":", 1)[1].isdigit()


def _registry(body: str, origin: str) -> Location:
    ref = parse_reference(body, origin=origin)
    digest = Digest.parse(ref.digest, origin=origin) if ref.digest else None
    return Location("registry", reference=ref, tag=ref.tag, digest=digest)
