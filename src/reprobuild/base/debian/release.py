"""The suite's ``InRelease``/``Release`` file: fetched, signature-checked, parsed.

Spec: Debian wiki "DebianRepository/Format" (``dists/<suite>/InRelease`` is the clear-signed
``Release``; its ``SHA256`` field lists ``<sha256> <size> <path>`` for every index). The signature
is checked with ``gpgv`` against ``/usr/share/keyrings/debian-archive-keyring.gpg`` when both exist;
only the signed text (what ``gpgv --output`` returns) is parsed. When either is missing the
release is used unverified and the lock says so in ``release.signature``.
"""

from __future__ import annotations

import email.utils
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from reprobuild.base.debian.deb822 import iter_stanzas
from reprobuild.base.debian.fetch import http_get, sha256_hex
from reprobuild.base.debian.sources import snapshot_timestamp
from reprobuild.errors import BaseImageError
from reprobuild.urls import redact

#: The Debian archive keyring from the `debian-archive-keyring` package.
DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


@dataclass(frozen=True)
class IndexFile:
    """One index listed in ``Release``: path relative to ``dists/<suite>/``, size and sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Release:
    """A parsed, possibly verified ``Release`` file."""

    sha256: str  # of the file as downloaded (InRelease, signature included)
    file: str  # "InRelease"
    signature: str  # how it was verified, or why it was not
    fields: dict[str, str]
    files: dict[str, IndexFile]

    @property
    def date(self) -> str:
        """The ``Date`` field (empty when absent)."""
        return self.fields.get("Date", "")

    def index(self, path: str) -> IndexFile:
        """The entry for ``path``; :class:`BaseImageError` when the release does not list it."""
        try:
            return self.files[path]
        except KeyError:
            raise BaseImageError(
                f"the Release file does not list `{path}`",
                hint="check the suite, component and architecture",
            ) from None


def _gpgv_verify(data: bytes, keyring: Path) -> tuple[bytes, str]:
    """Verify a clear-signed file; return the signed text and the signing key's fingerprint."""
    gpgv = shutil.which("gpgv")
    assert gpgv is not None
    with tempfile.TemporaryDirectory(prefix="repro-build-gpgv-") as tmp:
        signed = Path(tmp) / "InRelease"
        signed.write_bytes(data)
        out = Path(tmp) / "Release"
        proc = subprocess.run(
            [gpgv, "--status-fd", "1", "--keyring", str(keyring), "--output", str(out), str(signed)],
            capture_output=True,
            check=False,
        )
        status = proc.stdout.decode(errors="replace")
        fingerprints = [line.split()[2] for line in status.splitlines() if line.startswith("[GNUPG:] VALIDSIG")]
        if proc.returncode != 0 or not fingerprints:
            raise BaseImageError(
                "the InRelease signature does not verify against "
                f"{keyring}: {proc.stderr.decode(errors='replace').strip()[-400:]}",
                hint="the mirror served a Release file not signed by a Debian archive key; check "
                "the mirror, or update the `debian-archive-keyring` package",
            )
        return out.read_bytes(), fingerprints[0]


def parse_release(text: str) -> tuple[dict[str, str], dict[str, IndexFile]]:
    """Parse the fields and the ``SHA256`` file list of a (signed-text) Release file."""
    stanzas = list(iter_stanzas(text, "Release"))
    if len(stanzas) != 1:
        raise BaseImageError(f"the Release file has {len(stanzas)} stanzas, expected 1")
    fields = stanzas[0]
    listing = fields.get("SHA256", "")
    if not listing:
        raise BaseImageError(
            "the Release file has no SHA256 field",
            hint="the mirror is too old or broken; use a mirror that publishes SHA256 sums",
        )
    files: dict[str, IndexFile] = {}
    for line in listing.splitlines():
        words = line.split()
        if len(words) != 3 or not words[1].isdigit():
            raise BaseImageError(f"the Release file's SHA256 field has a bad line: {line!r}")
        files[words[2]] = IndexFile(words[2], int(words[1]), words[0])
    return fields, files


def fetch_release(mirror: str, suite: str, keyring: Path = DEFAULT_KEYRING) -> Release:
    """Download ``dists/<suite>/InRelease`` from ``mirror``, verify it when possible, and parse it."""
    url = f"{mirror.rstrip('/')}/dists/{suite}/InRelease"
    data = http_get(url, f"the InRelease file of `{suite}`")
    if shutil.which("gpgv") is None:
        signature = "not verified: gpgv is not installed"
        text = _strip_clearsign(data)
    elif not keyring.is_file():
        signature = f"not verified: the keyring {keyring} is missing"
        text = _strip_clearsign(data)
    else:
        signed, fingerprint = _gpgv_verify(data, keyring)
        signature = f"verified by gpgv with {keyring.name}: key {fingerprint}"
        text = signed
    fields, files = parse_release(text.decode("utf-8", errors="strict"))
    codename, release_suite = fields.get("Codename", ""), fields.get("Suite", "")
    if suite not in {codename, release_suite}:
        raise BaseImageError(
            f"{redact(url)} is for `{codename or release_suite}`, not `{suite}`",
            hint="the mirror redirects to another suite; check the mirror URL",
        )
    _check_valid_until(fields, url, snapshot=snapshot_timestamp(mirror) is not None)
    return Release(sha256_hex(data), "InRelease", signature, fields, files)


def _check_valid_until(fields: dict[str, str], url: str, *, snapshot: bool, now: float | None = None) -> None:
    """Refuse an expired Release from a live mirror, as apt does (a stale or replayed mirror).

    A snapshot archive serves old Release files by design, so there the date is not checked.
    """
    text = fields.get("Valid-Until")
    if not text or snapshot:
        return
    try:
        until = email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        raise BaseImageError(f"{redact(url)}: cannot parse `Valid-Until: {text}`") from None
    if (time.time() if now is None else now) > until:
        raise BaseImageError(
            f"{redact(url)} expired on {text} (Valid-Until): the mirror is stale or replays an old release",
            hint="use an up-to-date mirror, or a snapshot archive URL to pin an old state on purpose",
        )


def _strip_clearsign(data: bytes) -> bytes:
    # Unverified path only: the text between the clear-sign header's blank line and the signature.
    text = data.decode("utf-8", errors="strict")
    if not text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        return data
    body = text.split("\n\n", 1)[1]
    body = body.split("\n-----BEGIN PGP SIGNATURE-----", 1)[0]
    lines = [line[2:] if line.startswith("- ") else line for line in body.splitlines()]
    return ("\n".join(lines) + "\n").encode()
