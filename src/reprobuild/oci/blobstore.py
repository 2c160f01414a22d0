"""A content-addressed blob directory (``blobs/sha256/<hex>``, the OCI image layout's shape).

Nothing enters under its digest name unverified: content is written to a temp file in the same
directory, hashed while written (here, or by the verified download that fills it: :meth:`BlobStore.receive`),
compared with the expected digest (when known) and only then renamed into place, so a crash or a wrong
byte never leaves a corrupt entry behind (verify on read, write atomically).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from reprobuild.errors import DigestMismatchError, OCIError
from reprobuild.fsutil import clone_file, move_file
from reprobuild.oci.digest import CHUNK, Digest, sha256_file


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
