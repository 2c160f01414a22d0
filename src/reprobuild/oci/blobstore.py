"""A content-addressed blob directory (``blobs/sha256/<hex>``, the OCI image layout's shape).

Nothing enters under its digest name unverified: content is written to a temp file in the same
directory, hashed while written (here, or by the verified download that fills it: :meth:`BlobStore.receive`,
:meth:`BlobStore.fetch`), compared with the expected digest (when known) and only then renamed into
place, so a crash or a wrong byte never leaves a corrupt entry behind (verify on read, write atomically).
Several processes may fill one store at once: each writes its own temp file, and a rename replaces a
blob only with the same bytes.

The same class is the cache's one store (``<cache>/blobs/sha256/<hex>``, :func:`cache_store`): the
bytes of every cached download (``.deb`` files, Packages indexes, wheels, base and layer blobs) live
there once, found by a digest that comes from outside the cache (a lock, a Release file, a layer
cache entry checked against its inputs), and :meth:`BlobStore.verified` re-hashes a blob before it
is used.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from reprobuild.cache import cache_root
from reprobuild.download import Failure, fetch_file
from reprobuild.errors import DigestMismatchError, OCIError
from reprobuild.fsutil import clone_file, move_file
from reprobuild.oci.digest import CHUNK, Digest, sha256_file, sha256_stream

#: How a download into the store words its errors unless the caller says otherwise.
_PLAIN = Failure()


class HashingWriter:
    """A write-only file wrapper that counts and sha256-hashes what goes through it."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self._h.update(data)
        self._f.write(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._f.flush()

    @property
    def digest(self) -> Digest:
        return Digest(self._h.hexdigest())


class BlobStore:
    """Blobs under ``root/blobs/sha256/``; ``root`` may be an OCI layout directory or a staging dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "blobs" / "sha256"

    def path(self, digest: Digest) -> Path:
        return self.dir / digest.hex

    def has(self, digest: Digest) -> bool:
        return self.path(digest).is_file()

    def verified(self, digest: Digest, *, size: int | None = None, evict: bool = True) -> Path | None:
        """The blob's path if it holds ``size`` bytes (when given) hashing to ``digest``; else ``None``.

        ``digest`` (and ``size``) come from outside the store, so a blob that was rewritten, truncated
        or swapped is caught here; unless ``evict`` is false a blob whose bytes do not hash to its name
        is removed (but not a new file another process has just renamed into its place) and ``None`` is
        returned, so the caller fetches it again.
        """
        path = self.path(digest)
        try:
            # A blob that hashes to its name stays (the caller's size may be wrong).
            actual, actual_size = hash_or_evict(path, digest, evict=evict)
        except (FileNotFoundError, IsADirectoryError):
            return None
        return path if actual == digest and (size is None or actual_size == size) else None

    def fetch(
        self,
        url: str,
        *,
        expected: Digest,
        size: int | None,
        what: str,
        failure: Failure = _PLAIN,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """Download ``url`` into the store under ``expected`` (:func:`reprobuild.download.fetch_file`:
        streamed, retried, hashed while streaming and renamed into place only once it matches)."""
        return fetch_file(
            url, self.path(expected), sha256=expected.hex, size=size, what=what, failure=failure, progress=progress
        )

    def stage(self, digest: Digest, dest: Path, *, size: int | None = None, verify: bool = True) -> Path | None:
        """``dest`` holding the verified bytes of blob ``digest``, or ``None`` (blob absent or wrong, and evicted).

        ``dest`` is a hard link to the blob (a copy where the file system cannot link), hashed after it
        is made, so what ``dest`` holds is what was checked; ``verify=False`` skips that hash, only for
        a blob this process has just downloaded and verified itself (:meth:`fetch`). Its name is the
        caller's (a wheel's file name from a lock), never one read from the store: blobs have no names.
        """
        src = self.path(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)
        try:
            os.link(src, dest, follow_symlinks=True)
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            try:
                with src.open("rb") as s, dest.open("xb") as d:
                    clone_file(s, d)
            except (FileNotFoundError, IsADirectoryError):  # gone meanwhile, or not a file at all
                dest.unlink(missing_ok=True)
                return None
        if not verify:
            return dest
        with dest.open("rb") as f:
            if (size is None or os.fstat(f.fileno()).st_size == size) and sha256_stream(f)[0] == digest:
                return dest
        dest.unlink()
        self.verified(digest)  # evicts the blob if it is what is wrong (a rare path: hashing it again is fine)
        return None

    @contextlib.contextmanager
    def _temp(self) -> Iterator[tuple[BinaryIO, Path]]:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tmp-", dir=self.dir)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f, tmp
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _commit(self, tmp: Path, digest: Digest) -> Path:
        # 0644 whatever the umask (mkstemp creates 0600).
        tmp.chmod(0o644)
        dest = self.path(digest)
        if dest.is_dir() and not dest.is_symlink():
            # Not a blob this store wrote, so not one it removes; a rename onto it would fail less clearly.
            tmp.unlink(missing_ok=True)
            raise OCIError(
                f"the blob store entry {dest} is a directory, not a blob",
                hint=f"something other than repro-build wrote it; remove it (`rm -r {dest}`) and run again",
            )
        move_file(tmp, dest)
        return dest

    def write(
        self,
        fill: Callable[[HashingWriter], None],
        *,
        expected: Digest | None = None,
        size: int | None = None,
        what: str = "blob",
    ) -> tuple[Digest, int]:
        """Store what ``fill`` writes; verify against ``expected``/``size`` when given. Returns (digest, size)."""
        with self._temp() as (f, tmp):
            w = HashingWriter(f)
            fill(w)
            f.flush()
            os.fsync(f.fileno())
            actual = w.digest
            if expected is not None and actual != expected:
                tmp.unlink(missing_ok=True)
                raise DigestMismatchError(
                    f"{what}: received content has digest {actual}, expected {expected}",
                    hint="the source is corrupt or serves wrong bytes; nothing was stored",
                )
            if size is not None and w.size != size:
                tmp.unlink(missing_ok=True)
                raise DigestMismatchError(f"{what}: received {w.size} bytes, expected {size}")
        self._commit(tmp, actual)
        return actual, w.size

    def receive(self, fill: Callable[[BinaryIO], None], *, expected: Digest) -> Path:
        """Store what ``fill`` writes into a real (seekable) temp file when ``fill`` itself checks the bytes
        against ``expected`` as they stream and raises otherwise (:meth:`RegistryClient.get_blob
        <reprobuild.oci.registry.RegistryClient.get_blob>` does, through :mod:`reprobuild.download`): the
        file is renamed into place without being read a second time. Skips a present blob.
        """
        if self.has(expected):
            return self.path(expected)
        with self._temp() as (f, tmp):
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        return self._commit(tmp, expected)

    def put_bytes(self, data: bytes, *, expected: Digest | None = None, what: str = "blob") -> Digest:
        def fill(w: HashingWriter) -> None:
            w.write(data)

        digest, _ = self.write(fill, expected=expected, what=what)
        return digest

    def copy_from(self, src: BinaryIO, *, expected: Digest, size: int | None, what: str) -> Path:
        """Stream ``src`` into the store, verifying digest and size; skip when already present."""
        if self.has(expected):
            return self.path(expected)

        def fill(w: HashingWriter) -> None:
            while chunk := src.read(CHUNK):
                w.write(chunk)

        self.write(fill, expected=expected, size=size, what=what)
        return self.path(expected)

    def copy_file(self, src: Path, *, expected: Digest, size: int | None, what: str) -> Path:
        """Copy the file ``src`` into the store (a reflink where possible, never a hard link), then
        verify the copy against ``expected``/``size`` before it takes its name. Skips a present blob.
        """
        if self.has(expected):
            return self.path(expected)
        with self._temp() as (f, tmp), src.open("rb") as s:
            clone_file(s, f)
            f.flush()
            os.fsync(f.fileno())
            actual, n = sha256_file(tmp)
            if actual != expected or (size is not None and n != size):
                tmp.unlink(missing_ok=True)
                raise DigestMismatchError(
                    f"{what}: {src} has {n} bytes with digest {actual}, expected {expected}",
                    hint="the source blob is corrupt; nothing was stored",
                )
        return self._commit(tmp, expected)

    def read_verified(self, digest: Digest, *, what: str, max_size: int = 64 << 20) -> bytes:
        """Read a small blob (manifest, config) and check it against its name."""
        p = self.path(digest)
        try:
            if p.stat().st_size > max_size:
                raise OCIError(f"{what}: blob {digest} is larger than {max_size} bytes", hint="is this a layer?")
            data = p.read_bytes()
        except FileNotFoundError as e:
            raise OCIError(f"{what}: blob {digest} is missing from {self.dir}", hint="the layout is incomplete") from e
        actual = Digest.of_bytes(data)
        if actual != digest:
            raise DigestMismatchError(
                f"{what}: blob {p} has digest {actual}, not the {digest} its name claims",
                hint="the layout is corrupt; copy it again from its source",
            )
        return data


def hash_or_evict(path: Path, expected: Digest, *, evict: bool = True) -> tuple[Digest, int]:
    """The digest and size of the file ``path`` (one open); unless ``evict`` is false, the file is removed
    when its bytes do not hash to ``expected``, but not a new file another process has renamed onto the
    name since it was opened. Raises ``OSError`` (e.g. ``FileNotFoundError``) when it cannot be read."""
    with path.open("rb") as f:
        st = os.fstat(f.fileno())
        actual, size = sha256_stream(f)
    if evict and actual != expected:
        _unlink_if_same(path, st)
    return actual, size


def _unlink_if_same(path: Path, seen: os.stat_result) -> None:
    """Remove ``path`` if it is still the file ``seen`` was taken of (not a new one renamed onto it since)."""
    with contextlib.suppress(FileNotFoundError):
        now = path.stat()
        if (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino):
            path.unlink()


def cache_store(root: Path | None = None) -> BlobStore:
    """The store every cache of repro-build keeps its bytes in: ``<cache>/blobs/sha256/<hex>``
    (``root`` defaults to :func:`reprobuild.cache.cache_root`)."""
    return BlobStore(root or cache_root())
