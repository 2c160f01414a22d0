"""The sdist unpacking used on Pythons whose tarfile has no extraction filters (before 3.11.4)."""

from __future__ import annotations

import io
import tarfile

import pytest

from reprobuild.errors import WheelError
from reprobuild.wheel.build import _safe_members


def _tar(*members: tarfile.TarInfo) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for m in members:
            t.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)
    buf.seek(0)
    return tarfile.open(fileobj=buf, mode="r")


def _file(name: str, mode: int = 0o664) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode = 1, mode
    return info


def test_plain_members_pass_with_normalised_modes() -> None:
    members = _safe_members(_tar(_file("pkg-1/a.py"), _file("pkg-1/run.sh", 0o775)), "pkg-1.tar.gz")
    assert [(m.name, oct(m.mode)) for m in members] == [("pkg-1/a.py", "0o644"), ("pkg-1/run.sh", "0o755")]


@pytest.mark.parametrize("name", ["/etc/passwd", "pkg-1/../../evil"])
def test_escaping_members_are_refused(name: str) -> None:
    with pytest.raises(WheelError, match="refusing member"):
        _safe_members(_tar(_file(name)), "bad.tar.gz")


def test_links_are_refused() -> None:
    link = tarfile.TarInfo("pkg-1/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(WheelError, match="refusing member"):
        _safe_members(_tar(link), "bad.tar.gz")
