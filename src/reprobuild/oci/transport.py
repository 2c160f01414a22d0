"""Reading and writing an image at a :class:`~reprobuild.oci.location.Location`, and ``repro-build copy``.

- a layout directory and an archive (``oci-archive:`` and ``docker-archive:`` alike: one tar that is an OCI
  layout and a ``docker load`` archive is written, and either kind is read);
- the Docker engine (load as a sink; save as a source, which cannot keep layer digests: see
  :mod:`reprobuild.oci.engine`);
- a registry; 127.0.0.1, localhost and [::1] are spoken to over plain HTTP (the client's rule).

Digests are preserved for layout, archive and registry sinks: blobs and manifests are copied byte for
byte and verified on the way.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from reprobuild.errors import ConfigError, OCIError
from reprobuild.oci.archive import read_archive, write_archive
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image
from reprobuild.oci.index import Artifact, Index, select_platform
from reprobuild.oci.layout import read_layout, write_layout
from reprobuild.oci.location import Location, parse_location
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.reference import Reference
from reprobuild.oci.values import Platform


def read_location(
    loc: Location, staging: Path, *, platform: Platform | None, progress: Progress = NO_PROGRESS
) -> Artifact:
    """Load the image or index at ``loc`` (blobs staged under ``staging`` where they must be fetched)."""
    art: Artifact
    if loc.kind == "oci-layout":
        assert loc.path is not None
        art = read_layout(loc.path, tag=loc.tag, digest=loc.digest)
    elif loc.is_archive:
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


def write_location(
    loc: Location,
    art: Artifact,
    staging: Path,
    *,
    progress: Progress = NO_PROGRESS,
    mount_from: Reference | None = None,
) -> Digest:
    """Write ``art`` to ``loc``; return the digest a reader of ``loc`` sees (manifest, or image ID for an engine).

    ``mount_from``: a repository that may hold some of the blobs (a build cache); a push to the same
    registry mounts them from there instead of uploading them.
    """
    if loc.kind == "oci-layout":
        assert loc.path is not None
        if loc.digest is not None:
            raise ConfigError(f"{loc}: a destination takes a tag, not a digest")
        write_layout(loc.path, art, tag=loc.tag, progress=progress)
        return art.digest
    if loc.is_archive:
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

    ref, mount = push_target(loc, art, mount_from)
    with RegistryClient(ref.api_host) as client:
        tags = [ref.tag] if ref.tag else []
        return push(client, ref.repository, art, tags=tags, progress=progress, mount_from=mount)


def push_target(loc: Location, art: Artifact, mount_from: Reference | None) -> tuple[Reference, str | None]:
    """The reference of the registry location ``loc`` that ``art`` is pushed to, checked against the digest
    it may name, and the repository to mount blobs from: ``mount_from``'s, when it is on the same registry."""
    ref = loc.reference
    assert ref is not None
    if ref.digest is not None and Digest.parse(ref.digest) != art.digest:
        raise OCIError(f"{loc}: the image to push has digest {art.digest}, not {ref.digest}")
    return ref, mount_repository(ref, mount_from)


def mount_repository(ref: Reference, mount_from: Reference | None) -> str | None:
    """The repository a push to ``ref`` mounts blobs from: ``mount_from``'s, when it is on the same registry."""
    return mount_from.repository if mount_from is not None and mount_from.api_host == ref.api_host else None


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
