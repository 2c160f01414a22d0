"""Blobs sent to a push's repository while the image is still being built.

``image --push`` knows where it pushes before it builds, and the image's bottom layers are final long
before the rest: the base's, and third-party layers reused from the cache (the build copies them into
its outputs meanwhile too). :class:`BlobsAhead` asks the registry for each of them (``HEAD``) and
uploads those it lacks, on threads of its own, while the project wheel and the layers above are built.
The push that follows skips what went up this way: after an app change its blob uploads start from the
new layers, the config and the attachments; after a cold build the base is up already.

What is pushed does not change. Each blob is hashed as it is sent (:meth:`RegistryClient.put_blob`
refuses bytes that do not match the digest), and every manifest is written only after all blobs are
there (:meth:`sent` waits for these). A blob that could not be sent here is not counted as sent: the
push sends it again and reports its error. A build that fails after some blobs went up leaves them in
the registry with no manifest naming them, as an interrupted push does; registries' garbage collection
removes such blobs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from reprobuild.oci.digest import Digest
from reprobuild.oci.layer import Layer
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.registry import RegistryClient
from reprobuild.oci.remote import DEFAULT_JOBS, push_layer


class BlobsAhead:
    """Layer blobs sent to ``repository`` of ``client``'s registry (``mount_from``: a repository of the same
    registry to mount them from, as the push would) while the build goes on. A context manager: leaving
    it waits for the uploads under way and starts no more."""

    def __init__(
        self,
        client: RegistryClient,
        repository: str,
        *,
        mount_from: str | None = None,
        progress: Progress = NO_PROGRESS,
        jobs: int = DEFAULT_JOBS,
    ) -> None:
        self.client = client
        self.repository = repository
        self.mount_from = mount_from
        self._progress = progress
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="repro-build-ahead")
        self._jobs: dict[Digest, Future[None]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> BlobsAhead:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def serves(self, host: str, repository: str, mount_from: str | None) -> bool:
        """Whether a push to ``repository`` at ``host`` (mounting from ``mount_from``) is this one's."""
        return (self.client.host, self.repository, self.mount_from) == (host, repository, mount_from)

    def offer(self, layers: Sequence[Layer]) -> None:
        """Start sending each of ``layers`` not offered before (called from any thread)."""
        with self._lock:
            for layer in layers:
                if layer.digest in self._jobs:
                    continue
                work = push_layer(
                    self.client,
                    self.repository,
                    layer,
                    chunk_size=None,
                    progress=self._progress,
                    name=f"layer {layer.digest.algorithm}:{layer.digest.hex[:12]}",
                    mount_from=self.mount_from,
                )
                self._jobs[layer.digest] = self._pool.submit(work)

    def sent(self) -> set[Digest]:
        """Wait for every upload started; the digests the registry now holds in the repository (those whose
        upload failed are left out, for the push to send and report)."""
        with self._lock:
            jobs = dict(self._jobs)
        return {digest for digest, job in jobs.items() if not job.cancelled() and job.exception() is None}


__all__ = ["BlobsAhead"]
