"""The sha256-keyed .deb cache, and the Release file's signature and index checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reprobuild.base.debian import packages
from reprobuild.base.debian.fetch import DebCache
from reprobuild.base.debian.packages import fetch_packages
from reprobuild.base.debian.release import _check_valid_until, fetch_release, parse_release
from reprobuild.base.debian.sources import default_mirror
from reprobuild.errors import BaseImageError, DigestMismatchError
from tests.testbed import free_port

PAYLOAD = b"!<arch>\npretend this is a .deb\n"
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def mirror_file(tmp_path: Path, data: bytes = PAYLOAD) -> str:
    path = tmp_path / "mirror" / "pool" / "x.deb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


def test_download_is_verified_then_cached(tmp_path: Path) -> None:
    cache = DebCache(tmp_path / "cache")
    url = mirror_file(tmp_path)
    assert cache.get(SHA, len(PAYLOAD), url, "x") == cache.path(SHA)
    assert cache.path(SHA).read_bytes() == PAYLOAD
    # Warm: the mirror may vanish, the cache answers.
    assert cache.get(SHA, len(PAYLOAD), "http://127.0.0.1:1/x.deb", "x", offline=True) == cache.path(SHA)


def test_tampered_cache_entry_is_refetched(tmp_path: Path) -> None:
    cache = DebCache(tmp_path / "cache")
    url = mirror_file(tmp_path)
    cache.get(SHA, len(PAYLOAD), url, "x")
    cache.path(SHA).write_bytes(PAYLOAD.replace(b"pretend", b"TAMPERD"))
    assert cache.get(SHA, len(PAYLOAD), url, "x").read_bytes() == PAYLOAD


def test_tampered_cache_entry_is_refused_offline(tmp_path: Path) -> None:
    cache = DebCache(tmp_path / "cache")
    cache.get(SHA, len(PAYLOAD), mirror_file(tmp_path), "x")
    cache.path(SHA).write_bytes(b"evil")
    with pytest.raises(DigestMismatchError, match="does not match the lock's sha256"):
        cache.get(SHA, len(PAYLOAD), f"http://127.0.0.1:{free_port()}/x.deb", "x", offline=True)
    assert not cache.path(SHA).exists()


def test_mirror_serving_other_bytes_is_refused(tmp_path: Path) -> None:
    cache = DebCache(tmp_path / "cache")
    with pytest.raises(DigestMismatchError, match="the lock pins"):
        cache.get(SHA, len(PAYLOAD), mirror_file(tmp_path, b"other bytes"), "x")
    assert not cache.path(SHA).exists()


def test_unreachable_mirror(tmp_path: Path) -> None:
    cache = DebCache(tmp_path / "cache")
    with pytest.raises(BaseImageError, match=r"downloading x from http://127\.0\.0\.1:\d+/x\.deb"):
        cache.get(SHA, len(PAYLOAD), f"http://127.0.0.1:{free_port()}/x.deb", "x")
    with pytest.raises(BaseImageError, match="not in the cache"):
        cache.get(SHA, len(PAYLOAD), "http://127.0.0.1:1/x.deb", "x", offline=True)


def test_parse_release_errors() -> None:
    with pytest.raises(BaseImageError, match="no SHA256 field"):
        parse_release("Origin: Debian\nMD5Sum:\n abc 1 main/x\n")
    with pytest.raises(BaseImageError, match="bad line"):
        parse_release("SHA256:\n abc notanumber main/x\n")
    fields, files = parse_release("Codename: bookworm\nSHA256:\n " + "a" * 64 + " 12 main/binary-amd64/Packages.xz\n")
    assert fields["Codename"] == "bookworm"
    assert files["main/binary-amd64/Packages.xz"].size == 12


@pytest.fixture(scope="module")
def real_inrelease(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file mirror holding a copy of the machine mirror's bookworm InRelease."""
    from reprobuild.base.debian.fetch import http_get

    mirror = default_mirror("bookworm")
    data = http_get(f"{mirror}/dists/bookworm/InRelease", "InRelease")
    root = tmp_path_factory.mktemp("mirror")
    (root / "dists" / "bookworm").mkdir(parents=True)
    (root / "dists" / "bookworm" / "InRelease").write_bytes(data)
    return root


@pytest.mark.network
def test_signature_verified(real_inrelease: Path) -> None:
    release = fetch_release(real_inrelease.as_uri(), "bookworm")
    assert release.signature.startswith("verified by gpgv with debian-archive-keyring.gpg: key ")
    assert "main/binary-amd64/Packages.xz" in release.files
    assert release.sha256 == hashlib.sha256((real_inrelease / "dists/bookworm/InRelease").read_bytes()).hexdigest()


@pytest.mark.network
def test_tampered_release_fails_the_signature(real_inrelease: Path, tmp_path: Path) -> None:
    text = (real_inrelease / "dists/bookworm/InRelease").read_text()
    line = next(
        x for x in text.splitlines() if x.endswith(" main/binary-amd64/Packages.xz") and len(x.split()[0]) == 64
    )
    digest = line.split()[0]
    forged = text.replace(digest, digest[::-1], 1)
    (tmp_path / "dists/bookworm").mkdir(parents=True)
    (tmp_path / "dists/bookworm/InRelease").write_text(forged)
    with pytest.raises(BaseImageError, match="signature does not verify"):
        fetch_release(tmp_path.as_uri(), "bookworm")


@pytest.mark.network
def test_without_keyring_or_gpgv_it_says_so(
    real_inrelease: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = fetch_release(real_inrelease.as_uri(), "bookworm", keyring=tmp_path / "absent.gpg")
    assert release.signature == f"not verified: the keyring {tmp_path / 'absent.gpg'} is missing"
    assert "main/binary-amd64/Packages.xz" in release.files
    monkeypatch.setenv("PATH", str(tmp_path))
    release = fetch_release(real_inrelease.as_uri(), "bookworm")
    assert release.signature == "not verified: gpgv is not installed"


@pytest.mark.network
def test_wrong_suite_is_refused(real_inrelease: Path, tmp_path: Path) -> None:
    (tmp_path / "dists/trixie").mkdir(parents=True)
    (tmp_path / "dists/trixie/InRelease").write_bytes((real_inrelease / "dists/bookworm/InRelease").read_bytes())
    with pytest.raises(BaseImageError, match="is for `bookworm`, not `trixie`"):
        fetch_release(tmp_path.as_uri(), "trixie")


@pytest.mark.network
def test_packages_index_must_match_release(
    real_inrelease: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh process: no index parsed yet (an index already verified in-process is reused by sha256).
    monkeypatch.setattr(packages, "_LAST_PARSED", {})
    release = fetch_release(real_inrelease.as_uri(), "bookworm")
    index = real_inrelease / "dists/bookworm/main/binary-amd64/Packages.xz"
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_bytes(b"not the index")
    with pytest.raises(DigestMismatchError, match="the Release file lists"):
        fetch_packages(real_inrelease.as_uri(), "bookworm", "main", "amd64", release=release, cache=DebCache(tmp_path))


def test_valid_until() -> None:
    fields = {"Valid-Until": "Sat, 28 Nov 2026 00:53:02 UTC"}
    until = 1795827182.0  # that date, in seconds
    before, after = until - 1, until + 1
    _check_valid_until(fields, "http://m.invalid/x", snapshot=False, now=before)
    with pytest.raises(BaseImageError, match=r"expired on Sat, 28 Nov 2026 .* \(Valid-Until\)"):
        _check_valid_until(fields, "http://m.invalid/x", snapshot=False, now=after)
    _check_valid_until(fields, "http://m.invalid/x", snapshot=True, now=after)  # snapshots are old by design
    _check_valid_until({}, "http://m.invalid/x", snapshot=False, now=after)
