"""Reading a lock file: every pin and the sha256 hashes it allows, nothing else taken for a hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.errors import LockError
from reprobuild.lock.reader import read_lock

A, B = "ab" * 32, "cd" * 32


def test_pins_and_their_hashes_across_continuation_lines(tmp_path: Path) -> None:
    lock = tmp_path / "cpu.txt"
    lock.write_text(
        "# a comment\n"
        f"six==1.17.0 \\\n    --hash=sha256:{A} \\\n    --hash=sha256:{B}\n"
        f"Idna[all]==3.10 --hash=sha256:{A}  # via x\n"
    )
    packages = read_lock(lock)
    assert {name: (p.version, sorted(p.hashes)) for name, p in packages.items()} == {
        "six": ("1.17.0", [A, B]),
        "idna": ("3.10", [A]),
    }


@pytest.mark.parametrize(
    "hash_text",
    [
        "--hash=sha256:" + "AB" * 32,  # digests are lowercase hex
        "--hash=sha256:" + "ab" * 31,  # too short
        "--hash=sha256:" + "ab" * 32 + "ff",  # too long: not the first 64 digits of it
        "--hash=md5:" + "ab" * 16,
    ],
)
def test_a_pin_without_a_sha256_hash_is_refused(tmp_path: Path, hash_text: str) -> None:
    lock = tmp_path / "cpu.txt"
    lock.write_text(f"six==1.17.0 {hash_text}\n")
    with pytest.raises(LockError, match=r"six==1\.17\.0 has no hash"):
        read_lock(lock)
