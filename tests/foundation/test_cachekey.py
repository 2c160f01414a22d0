"""Sealed cache entries (reprobuild.cachekey): what one machine writes, only that machine reads back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprobuild.cachekey import KEY_ENV, UnsealedEntry, read_sealed, write_sealed


@pytest.fixture(autouse=True)
def machine_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "machine-a"))


def test_an_entry_reads_back_on_the_machine_that_wrote_it(tmp_path: Path) -> None:
    path = tmp_path / "entry.json"
    assert write_sealed(path, {"key": "k1", "facts": [1, "two", None]})
    assert read_sealed(path, key="k1") == {"key": "k1", "facts": [1, "two", None]}
    assert read_sealed(tmp_path / "absent.json") is None


def test_another_machine_or_an_edit_or_other_inputs_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "entry.json"
    write_sealed(path, {"key": "k1", "value": 1})
    with pytest.raises(UnsealedEntry, match=r"payload\.key is 'k1', not 'k2'"):
        read_sealed(path, key="k2")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "machine-b"))
    with pytest.raises(UnsealedEntry, match="not sealed by this machine's cache key"):
        read_sealed(path, key="k1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "machine-a"))
    data = json.loads(path.read_text())
    data["payload"]["value"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(UnsealedEntry, match="not sealed by this machine's cache key"):
        read_sealed(path, key="k1")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{", "it is not JSON"),
        (b"\xff{}", "it is not JSON"),
        (b'{"payload": {}}', "it is not a sealed entry"),
        (b'{"hmac": "00", "payload": [1]}', "it is not a sealed entry"),
        (b'{"hmac": "00", "payload": {}, "more": 1}', "it is not a sealed entry"),
        (b"[]", "it is not a sealed entry"),
    ],
)
def test_what_is_not_an_entry_is_refused(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "entry.json"
    path.write_bytes(content)
    with pytest.raises(UnsealedEntry, match=why):
        read_sealed(path)


def test_a_link_a_directory_or_a_large_file_is_refused(tmp_path: Path) -> None:
    """Even a link to an honest entry: an entry is never read through a link."""
    honest = tmp_path / "honest.json"
    write_sealed(honest, {"key": "k1"})
    (tmp_path / "link.json").symlink_to(honest)
    with pytest.raises(UnsealedEntry, match="symbolic link"):
        read_sealed(tmp_path / "link.json")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(UnsealedEntry, match="cannot be read"):
        read_sealed(tmp_path / "dir.json")
    with pytest.raises(UnsealedEntry, match="over 10 bytes"):
        read_sealed(honest, max_bytes=10)
    assert read_sealed(honest, max_bytes=honest.stat().st_size) == {"key": "k1"}


def test_without_a_key_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No key can be made (its directory is a file): nothing sealed is written, so nothing is trusted."""
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "not-a-dir"))
    path = tmp_path / "entry.json"
    assert not write_sealed(path, {"key": "k1"})
    assert not path.exists()
