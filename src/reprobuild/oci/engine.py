"""The Docker engine as a sink (``docker load``) and a source (``docker save``), via the docker SDK.

Load: the archive written by :mod:`reprobuild.oci.archive` is streamed to the engine; the engine's
image ID must equal the config digest (checked). Save: an engine keeps layers *uncompressed* and
cannot give back the original compressed blobs, so an image saved from an engine has uncompressed
layers: its config (hence image ID) and every diff_id are preserved, but layer digests and the
manifest digest differ from the image that was loaded. Pushing an engine image therefore yields a
new manifest digest; copy from a layout, archive or registry to keep digests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from reprobuild.errors import EngineError, ReproBuildError
from reprobuild.oci.archive import read_archive, write_archive
from reprobuild.oci.image import Image
from reprobuild.oci.index import Artifact
from reprobuild.oci.progress import NO_PROGRESS, Progress

#: What a docker SDK call raises when the engine refuses or cannot be reached: the SDK's own errors
#: (``APIError`` and its ``NotFound``/``ImageNotFound`` are also ``requests.HTTPError``), and the errors of
#: the ``requests`` transport beneath it (a refused socket, a timeout, a cut stream). Anything else out
#: of an SDK call is a bug and is left to surface as one.
ENGINE_ERRORS: tuple[type[Exception], ...] = (docker.errors.DockerException, requests.exceptions.RequestException)
#: ``docker save``: the engine's errors, and writing the staging file.
_SAVE_ERRORS: tuple[type[Exception], ...] = (*ENGINE_ERRORS, OSError)


def connect() -> Any:
    """A docker SDK client from the environment (``DOCKER_HOST`` or the default socket)."""
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except ENGINE_ERRORS as e:
        raise EngineError(
            f"cannot reach the Docker engine: {e}",
            hint="start it (`dockerd`), or set `DOCKER_HOST`; building needs no engine, only loading does",
        ) from e
    return client


def load_archive(client: Any, path: Path) -> str:
    """``docker load`` the archive at ``path``; return the image ID the engine reports."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise EngineError(f"`docker load`: cannot read {path}: {e}") from e
    with f:
        try:
            images = client.images.load(f)
        except ENGINE_ERRORS as e:
            raise EngineError(
                f"`docker load` of {path} failed: {e}", hint="is it a gzip or uncompressed archive?"
            ) from e
    if not images:
        raise EngineError(f"`docker load` of {path} reported no image")
    return str(images[0].id)


def load_image(
    client: Any,
    image: Image,
    repo_tag: str,
    staging: Path,
    *,
    progress: Progress = NO_PROGRESS,
    archive: Path | None = None,
) -> str:
    """Write ``image`` as an archive in ``staging`` and load it; check that image ID == config digest.

    ``archive``: the archive :func:`~reprobuild.oci.archive.write_archive` already wrote of ``image`` with
    ``repo_tag`` (a build's ``image.tar``), loaded as it is instead of writing another copy.
    """
    if image.is_artifact:
        raise EngineError(f"manifest {image.digest} is an artifact (e.g. an attestation), not a runnable image")
    written = archive is None
    if archive is None:
        staging.mkdir(parents=True, exist_ok=True)
        archive = staging / "load.tar"
        write_archive(archive, image, repo_tags=[repo_tag])
    try:
        size = archive.stat().st_size
        with progress.task(f"loading {repo_tag} into the Docker engine", size) as task:
            image_id = load_archive(client, archive)
            task(size)
    finally:
        if written:
            archive.unlink(missing_ok=True)
    try:
        loaded = str(client.images.get(repo_tag).id)
    except ENGINE_ERRORS as e:
        raise EngineError(f"the engine has no {repo_tag} after loading it: {e}") from e
    if image_id != str(image.config_digest) or loaded != image_id:
        raise EngineError(
            f"the engine reports image ID {loaded} for {repo_tag}, expected the config digest {image.config_digest}"
        )
    return image_id


def image_digests(client: Any, name: str) -> tuple[str, list[str]]:
    """The engine's image ID of ``name`` and the manifest digests it records for it (``RepoDigests``:
    those it was pulled or pushed by; none for an image that was only loaded or built)."""
    try:
        attrs = client.images.get(name).attrs
    except ENGINE_ERRORS as e:
        raise EngineError(
            f"the engine has no image {name}: {e}", hint=f"does `docker image inspect {name}` work?"
        ) from e
    digests = [str(d).rpartition("@")[2] for d in attrs.get("RepoDigests") or [] if "@" in str(d)]
    return str(attrs.get("Id")), sorted(set(digests))


def save_image(client: Any, name: str, staging: Path, *, progress: Progress = NO_PROGRESS) -> Artifact:
    """``docker save`` ``name`` into ``staging`` and read it (uncompressed layers; see the module docstring)."""
    staging.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.NamedTemporaryFile(dir=staging, prefix=".save-", suffix=".tar", delete=False) as tmp,
        progress.task(f"saving {name} from the Docker engine") as task,
    ):
        tmp_path = Path(tmp.name)
        try:
            for chunk in client.api.get_image(name, chunk_size=1 << 20):
                tmp.write(chunk)
                task(len(chunk))
        except _SAVE_ERRORS as e:
            tmp_path.unlink(missing_ok=True)
            raise EngineError(
                f"`docker save {name}` failed: {e}", hint=f"does `docker image inspect {name}` work?"
            ) from e
    try:
        return read_archive(tmp_path, staging)
    except ReproBuildError as e:
        raise e.with_context(f"reading `docker save {name}`") from e
    finally:
        tmp_path.unlink(missing_ok=True)
