"""Image locations for ``repro-build copy`` (skopeo's transport names) and the copy itself.

- ``oci-layout:PATH[:TAG|@sha256:…]``: an OCI image layout directory.
- ``oci-archive:PATH[:TAG]``: our single tar that is an OCI layout and a ``docker load`` archive.
- ``docker-daemon:NAME[:TAG]``: the Docker engine (load as a sink; save as a source, which cannot keep
  layer digests: see :mod:`reprobuild.oci.engine`).
- ``docker://HOST/NAME[:TAG|@sha256:…]`` or plain ``HOST/NAME[:TAG|@sha256:…]``: a registry.
  127.0.0.1, localhost and [::1] are spoken to over plain HTTP (the client's rule).

Digests are preserved for layout, archive and registry sinks: blobs and manifests are copied byte for
byte and verified on the way.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reprobuild.errors import ConfigError, OCIError
from reprobuild.oci.archive import read_archive, write_archive
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image
from reprobuild.oci.index import Artifact, Index, select_platform
from reprobuild.oci.layout import read_layout, write_layout
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.values import Platform
from reprobuild.reference import Reference, parse_reference
from reprobuild.urls import has_userinfo, redact_text

Kind = Literal["oci-layout", "oci-archive", "docker-daemon", "registry"]
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


@dataclass(frozen=True)
class Location:
    """A parsed copy endpoint."""

    kind: Kind
    path: Path | None = None
    tag: str | None = None
    digest: Digest | None = None
    reference: Reference | None = None
    name: str | None = None  # docker-daemon NAME[:TAG]

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
    if "@sha256:" in text:
        path, _, d = text.rpartition("@")
        return path, None, Digest.parse(d, origin=origin)
    path, sep, tag = text.rpartition(":")
    if sep and path and "/" not in tag and _TAG_RE.match(tag):
        return path, tag, None
    return text, None, None


def parse_location(text: str) -> Location:
    """Parse a copy source or destination; raise :class:`ConfigError` naming it when malformed."""
    origin = f"image location {text!r}"
    for prefix in ("oci-layout:", "oci:"):
        if text.startswith(prefix):
            path, tag, digest = _split_path_ref(text[len(prefix) :], origin)
            if not path:
                raise ConfigError(f"{origin} has no path", hint="e.g. `oci-layout:./out:latest`")
            return Location("oci-layout", Path(path), tag, digest)
    if text.startswith("oci-archive:"):
        path, tag, digest = _split_path_ref(text[len("oci-archive:") :], origin)
        if not path:
            raise ConfigError(
                f"{origin}: an archive takes a path, and a tag or a digest", hint="e.g. `oci-archive:img.tar`"
            )
        return Location("oci-archive", Path(path), tag, digest)
    if text.startswith("docker-daemon:"):
        name = text[len("docker-daemon:") :]
        ref = parse_reference(name, origin=origin)
        if ref.digest:
            raise ConfigError(f"{origin}: the engine is addressed by name:tag, not by digest")
        return Location("docker-daemon", name=name if ref.tag else f"{name}:latest")
    body = text.removeprefix("docker://")
    if has_userinfo(text):
        raise ConfigError(
            f"image location {redact_text(text)!r} carries credentials (`user:password@`); a reference never does",
            hint="log in with `docker login HOST`, or set REPRO_BUILD_REGISTRY_USERNAME and "
            "REPRO_BUILD_REGISTRY_PASSWORD",
        )
    if ":" in body.split("/", 1)[0] and "/" not in body:
        raise ConfigError(
            f"{origin} is not a known transport", hint="use oci-layout:, oci-archive:, docker-daemon: or docker://"
        )
    ref = parse_reference(body, origin=origin)
    return Location("registry", reference=ref, tag=ref.tag, digest=Digest.parse(ref.digest) if ref.digest else None)


def read_location(
    loc: Location, staging: Path, *, platform: Platform | None, progress: Progress = NO_PROGRESS
) -> Artifact:
    """Load the image or index at ``loc`` (blobs staged under ``staging`` where they must be fetched)."""
    art: Artifact
    if loc.kind == "oci-layout":
        assert loc.path is not None
        art = read_layout(loc.path, tag=loc.tag, digest=loc.digest)
    elif loc.kind == "oci-archive":
        assert loc.path is not None
        if not loc.path.is_file():
            raise OCIError(f"archive {loc.path} does not exist")
        art = read_archive(loc.path, staging, tag=loc.tag)
        if loc.digest is not None and art.digest != loc.digest:
            # What `copy` prints for an archive destination names the image by digest; hold it to that.
            raise OCIError(
                f"archive {loc.path} holds {art.digest}, not {loc.digest}",
                hint="the archive was replaced since the digest was taken",
            )
    elif loc.kind == "docker-daemon":
        from reprobuild.oci import engine

        assert loc.name is not None
        art = engine.save_image(engine.connect(), loc.name, staging, progress=progress)
    else:
        from reprobuild.oci.registry import RegistryClient
        from reprobuild.oci.remote import pull

        ref = loc.reference
        assert ref is not None
        client = RegistryClient(ref.api_host)
        art = pull(client, ref.repository, ref.ref, BlobStore(staging), platform=platform, progress=progress)
    if platform is not None and isinstance(art, Index):
        art = select_platform(art, platform)
    if platform is not None and isinstance(art, Image) and art.platform and not platform.matches(art.platform):
        raise OCIError(
            f"{loc} is a single {art.platform} image, not {platform}",
            hint="drop `--platform`, or name an index that has this platform",
        )
    return art


def write_location(loc: Location, art: Artifact, staging: Path, *, progress: Progress = NO_PROGRESS) -> Digest:
    """Write ``art`` to ``loc``; return the digest a reader of ``loc`` sees (manifest, or image ID for an engine)."""
    if loc.kind == "oci-layout":
        assert loc.path is not None
        if loc.digest is not None:
            raise ConfigError(f"{loc}: a destination takes a tag, not a digest")
        write_layout(loc.path, art, tag=loc.tag, progress=progress)
        return art.digest
    if loc.kind == "oci-archive":
        assert loc.path is not None
        if loc.digest is not None:
            raise ConfigError(f"{loc}: a destination takes a tag, not a digest")
        write_archive(loc.path, art, tag=loc.tag)
        return art.digest
    if loc.kind == "docker-daemon":
        from reprobuild.oci import engine

        if not isinstance(art, Image):
            raise OCIError(f"{loc}: the engine takes one image, not an index", hint="pass `--platform os/arch`")
        assert loc.name is not None
        return Digest.parse(engine.load_image(engine.connect(), art, loc.name, staging, progress=progress))
    from reprobuild.oci.registry import RegistryClient
    from reprobuild.oci.remote import push

    ref = loc.reference
    assert ref is not None
    if ref.digest is not None and Digest.parse(ref.digest) != art.digest:
        raise OCIError(f"{loc}: the image to push has digest {art.digest}, not {ref.digest}")
    client = RegistryClient(ref.api_host)
    return push(client, ref.repository, art, tags=[ref.tag] if ref.tag else [], progress=progress)


def copy_image(
    src: str | Location,
    dst: str | Location,
    *,
    platform: Platform | None = None,
    staging_dir: Path | None = None,
    progress: Progress = NO_PROGRESS,
) -> str:
    """Copy an image between locations; return the destination pinned by digest (``name@sha256:…``).

    For a ``docker-daemon:`` destination the digest printed is the image ID (= config digest), since an
    engine has no manifest digest.
    """
    s = src if isinstance(src, Location) else parse_location(src)
    d = dst if isinstance(dst, Location) else parse_location(dst)
    with tempfile.TemporaryDirectory(prefix="repro-build-copy-", dir=staging_dir) as tmp:
        staging = Path(tmp)
        art = read_location(s, staging / "src", platform=platform, progress=progress)
        digest = write_location(d, art, staging / "dst", progress=progress)
    return d.pinned(digest)
