"""The wheel ``RECORD`` file: one ``path,hash,size`` CSV row per file (PEP 376, PEP 427 §"The .dist-info directory").

Rules (PEP 427 / the binary distribution format spec):

* the hash is ``sha256=`` followed by the urlsafe base64 of the digest *without* ``=`` padding;
* the size is the file's length in bytes;
* ``RECORD`` lists itself with empty hash and size (``<dist-info>/RECORD,,``), as do the signature
  files ``RECORD.jws`` / ``RECORD.p7s`` which cannot contain their own hash;
* rows use ``,`` separators and ``\\n`` line ends, as the ``wheel`` package and hatchling write them.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from collections.abc import Iterable, Mapping

from reprobuild.errors import WheelError

#: Members that RECORD lists without a hash (their content cannot include their own hash).
UNHASHED_SUFFIXES = ("/RECORD", "/RECORD.jws", "/RECORD.p7s")


def record_hash(data: bytes) -> str:
    """``sha256=<urlsafe b64, no padding>`` of ``data``."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def render_record(record_path: str, files: Iterable[tuple[str, bytes]]) -> bytes:
    """RECORD's bytes for ``files`` (archive name, content), in the given order, then RECORD's own row.

    Directory entries must not be passed (RECORD lists files only).
    """
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=",", quotechar='"', lineterminator="\n")
    for name, data in files:
        if name.endswith(UNHASHED_SUFFIXES):
            writer.writerow((name, "", ""))
        else:
            writer.writerow((name, record_hash(data), str(len(data))))
    writer.writerow((record_path, "", ""))
    return buf.getvalue().encode("utf-8")


def parse_record(data: bytes, origin: str) -> dict[str, tuple[str, str]]:
    """Rows of a RECORD as ``{path: (hash, size)}``; raises :class:`WheelError` on a malformed file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WheelError(f"{origin}: RECORD is not UTF-8: {e}") from e
    rows: dict[str, tuple[str, str]] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row:
            continue
        if len(row) != 3:
            raise WheelError(f"{origin}: RECORD line {number} has {len(row)} fields, expected 3 (path,hash,size)")
        rows[row[0]] = (row[1], row[2])
    return rows


def verify_record(rows: Mapping[str, tuple[str, str]], files: Mapping[str, bytes], origin: str) -> None:
    """Check that every hashed RECORD row matches the member it names (what the backend claimed).

    A mismatch means the backend wrote a broken wheel; repro-build refuses to paper over it by
    regenerating RECORD. Files missing from RECORD are accepted (RECORD is regenerated anyway).
    """
    for name, (hash_text, size) in sorted(rows.items()):
        if not hash_text:
            continue
        if name not in files:
            raise WheelError(f"{origin}: RECORD lists {name!r}, which is not in the archive")
        algorithm, _, _ = hash_text.partition("=")
        if algorithm != "sha256":
            # Other algorithms are allowed by PEP 376 but no backend in use writes them; skip, don't guess.
            continue
        if record_hash(files[name]) != hash_text or (size and size != str(len(files[name]))):
            raise WheelError(
                f"{origin}: {name!r} does not match its RECORD row (the backend wrote an inconsistent wheel)",
                hint="rebuild; if it persists, report it to the build backend",
            )
