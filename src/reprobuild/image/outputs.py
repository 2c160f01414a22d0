"""An image build's outputs in its staging directory: the OCI layout, ``image.tar`` and the SBOMs.

They are begun before the image is known. While the project wheel builds, the image's bottom layers
that are final already (the base's, and third-party layers reused from the cache: tens of MB) are
copied into the layout and the archive on a thread of their own, each copy checked against its
digest. Once the image is assembled only the small layers above it, the config, the manifests and the
SBOMs are left to write.

What is written does not depend on that schedule: the layout is a set of content-addressed files,
and the archive's entries follow an order fixed by the image (:class:`~reprobuild.oci.archive.ArchiveWriter`
starts again if the early layers do not begin it). A build that fails leaves nothing: the staging
directory is removed and the half-written archive with it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from reprobuild import __version__
from reprobuild.attest.inventory import BaseInventory
from reprobuild.attest.sbom import WheelFile
from reprobuild.config import Config, Target
from reprobuild.epoch import Epoch
from reprobuild.fsutil import atomic_write_bytes
from reprobuild.image import imageconfig
from reprobuild.image.base import ResolvedBase
from reprobuild.oci.archive import ArchiveWriter
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image
from reprobuild.oci.layer import Layer
from reprobuild.oci.layout import write_layout
from reprobuild.oci.progress import NO_PROGRESS, Progress


@dataclass(frozen=True)
class Facts:
    """What the SBOMs say besides the image: the base, its packages, the wheels, the project's wheel."""

    base: ResolvedBase
    inventory: BaseInventory
    wheels: Sequence[WheelFile]
    project: WheelFile | None
    epoch: Epoch


class StagedOutputs:
    """The outputs of one image, written into ``staged`` (a directory of the build's work tree that is
    renamed into place once complete). Used as a context manager: leaving it on an error waits for the
    early copies to stop and removes the unfinished archive."""

    def __init__(self, staged: Path, *, progress: Progress = NO_PROGRESS) -> None:
        self.staged = staged
        self._layout = BlobStore(staged / "oci")
        self._archive = ArchiveWriter(staged / "image.tar")
        self._progress = progress
        self._copied: dict[Digest, Layer] = {}
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="repro-build-outputs")
        self._early: Future[None] | None = None

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._archive.discard()  # nothing once finish has put the archive in place

    def begin(self, layers: Sequence[Layer]) -> None:
        """Start copying ``layers``, the image's bottom layers in order, into the layout and the archive.

        Called at most once, before :meth:`finish`; an error in the copies is raised by :meth:`finish`.
        """
        assert self._early is None, "begin is called once"
        self._early = self._pool.submit(self._copy, list(layers))

    def _copy(self, layers: list[Layer]) -> None:
        for layer in layers:
            if self._stop.is_set():
                return
            name = f"writing blob {layer.digest.algorithm}:{layer.digest.hex[:12]} into the OCI layout"
            with self._progress.task(name, layer.size) as task:
                path = self._layout.copy_file(
                    layer.path, expected=layer.digest, size=layer.size, what=f"layer {layer.digest} from {layer.path}"
                )
                task(layer.size)
            copy = Layer(layer.descriptor, layer.diff_id, path)
            self._archive.add_layers([copy])  # read back from the fresh copy, in the page cache
            self._copied[layer.digest] = copy
        self._archive.sync()

    def finish(self, image: Image, *, tag: str, repo_tag: str) -> Image:
        """Write the rest of ``image``'s layout (its entry tagged ``tag``) and archive (``repo_tag``);
        return ``image`` with the layers it shares with the layout read from there."""
        if self._early is not None:
            self._early.result()
        # Copies the image did not keep (its layers were planned again: a project file clashed with a
        # third-party one) leave the layout, which holds exactly the image's blobs.
        kept = {layer.digest for layer in image.layers}
        for digest, copy in self._copied.items():
            if digest not in kept:
                copy.path.unlink()
        # The copied layers are read from the layout from now on: its writer finds them in place.
        layers = tuple(self._copied.get(layer.digest, layer) for layer in image.layers)
        image = Image(image.manifest_bytes, image.config_bytes, layers)
        # Two files that do not depend on each other: written at once, each checking every blob it copies.
        archive = self._pool.submit(self._archive.finish, image, repo_tags=[repo_tag])
        write_layout(self.staged / "oci", image, tag=tag, progress=self._progress)
        archive.result()
        return image


def attach_sboms(
    config: Config, target: Target, image: Image, *, facts: Facts, staged: Path
) -> tuple[dict[str, Any], ...]:
    """Write the SPDX and CycloneDX SBOMs of ``image`` into ``staged`` and attach them to its layout."""
    from reprobuild.attest.referrers import artifact, attach_to_layout
    from reprobuild.attest.sbom import attestation_record, make_bom, sbom_documents

    created = imageconfig.rfc3339(facts.epoch.seconds)
    bom = make_bom(
        image=image,
        project_name=config.project.normalized_name,
        project_version=config.project.version,
        project_license=config.project.license,
        target=target.name,
        platform=target.platform,
        created=created,
        tool_version=__version__,
        base_reference=target.base.text,
        base_digest=facts.base.record.manifest_digest,
        base_inventory=facts.inventory,
        wheels=facts.wheels,
        project_wheel=facts.project,
    )
    records, artifacts = [], []
    for document in sbom_documents(bom):
        path = staged / document.name
        atomic_write_bytes(path, document.data)
        attached = artifact(image.descriptor, document, path, created=created)
        artifacts.append(attached)
        records.append(attestation_record(document, attached))
    attach_to_layout(staged / "oci", artifacts)
    return tuple(records)
