"""Moves between the build tree, temp directories and the cache, on one file system and across two."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import IO

import pytest

from reprobuild.errors import ReproBuildError
from reprobuild.fsutil import move_file, publish_dir, remove_tree_in_background


def _tree(root: Path, tag: str) -> dict[str, tuple[str, int]]:
    """Write a small tree (nested dirs, an executable, a symlink) and return what it should read as."""
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "blobs" / "sha256" / "ab").write_bytes(tag.encode() * 1000)
    (root / "index.json").write_text(f'{{"tag": "{tag}"}}')
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "latest").symlink_to("index.json")
    (root / "blobs").chmod(0o750)
    return _read(root)


def _read(root: Path) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        mode = p.lstat().st_mode & 0o7777
        if p.is_symlink():
            out[rel] = ("-> " + str(p.readlink()), 0)
        elif p.is_dir():
            out[rel] = ("dir", mode)
        else:
            out[rel] = (p.read_text(), mode)
    return out


def _directions(tmp_path: Path, other_fs: Path) -> list[tuple[Path, Path]]:
    """(source area, destination area): disk -> other file system, and back."""
    disk = tmp_path / "disk"
    disk.mkdir()
    return [(disk, other_fs), (other_fs, disk)]


def test_fixture_is_really_another_file_system(tmp_path: Path, other_fs: Path) -> None:
    """A plain rename between the two areas fails with EXDEV; otherwise the tests below prove nothing."""
    src = tmp_path / "f"
    src.write_text("x")
    with pytest.raises(OSError) as info:
        src.rename(other_fs / "f")
    assert info.value.errno == errno.EXDEV


def test_move_file_across_file_systems(tmp_path: Path, other_fs: Path) -> None:
    for i, (a, b) in enumerate(_directions(tmp_path, other_fs)):
        src, dest = a / f"blob{i}", b / f"blob{i}"
        src.write_bytes(b"new" * 100_000)
        src.chmod(0o644)
        dest.write_bytes(b"old")
        move_file(src, dest)
        assert dest.read_bytes() == b"new" * 100_000
        assert dest.stat().st_mode & 0o777 == 0o644
        assert not src.exists()
        assert [p.name for p in b.iterdir()] == [f"blob{i}"]  # no temp file left


@pytest.mark.parametrize("existing", [False, True])
def test_publish_dir_across_file_systems(tmp_path: Path, other_fs: Path, existing: bool) -> None:
    for i, (a, b) in enumerate(_directions(tmp_path, other_fs)):
        src, dest = a / f"build{i}", b / "cache" / f"entry{i}"
        want = _tree(src, f"new{i}")
        if existing:
            _tree(dest, "old")
            (dest / "stale-only-in-old").write_text("x")
        publish_dir(src, dest)
        assert _read(dest) == want
        assert not src.exists()
        assert [p.name for p in dest.parent.iterdir()] == [f"entry{i}"]  # neither staging nor the old tree


def test_publish_dir_same_file_system_is_a_rename(tmp_path: Path) -> None:
    src, dest = tmp_path / "out", tmp_path / "final"
    _tree(src, "a")
    inode = (src / "index.json").stat().st_ino
    _tree(dest, "old")
    publish_dir(src, dest)
    assert (dest / "index.json").stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_the_old_tree_can_be_removed_in_the_background(tmp_path: Path) -> None:
    """``image`` hands the replaced outputs to a thread of their own (fsutil.remove_tree_in_background)."""
    src, dest = tmp_path / "out", tmp_path / "final"
    new, old = _tree(src, "new"), _tree(dest, "old")
    handed: list[Path] = []
    publish_dir(src, dest, remove_old=handed.append)
    [aside] = handed
    assert _read(dest) == new
    assert _read(aside / "tree") == old  # the replaced tree, whole, for the caller to remove
    remove_tree_in_background(aside).join()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_failed_copy_keeps_the_old_tree_and_the_source(
    tmp_path: Path, other_fs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No space on the destination half-way: one clear error, nothing half-written, nothing lost."""
    src, dest = tmp_path / "build", other_fs / "entry"
    want = _tree(src, "new")
    old = _tree(dest, "old")
    real_copy = shutil.copyfileobj
    calls = 0

    def copy_then_fill_up(src: IO[bytes], dst: IO[bytes], length: int = 0) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_copy(src, dst, length)

    monkeypatch.setattr(shutil, "copyfileobj", copy_then_fill_up)
    with pytest.raises(ReproBuildError) as info:
        publish_dir(src, dest)
    assert "No space left on device" in info.value.message
    assert str(src) in info.value.message and str(dest) in info.value.message
    assert info.value.hint is not None and str(other_fs) in info.value.hint
    assert _read(dest) == old
    assert _read(src) == want
    assert [p.name for p in other_fs.iterdir()] == ["entry"]
