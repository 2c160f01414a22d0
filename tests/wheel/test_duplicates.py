"""An archive with a member name twice is ambiguous: both canonicalisers refuse it."""

from __future__ import annotations

import gzip
import io
import tarfile
import warnings
import zipfile

import pytest

from reprobuild.epoch import Epoch
from reprobuild.errors import WheelError
from reprobuild.wheel.canonical_sdist import canonicalize_sdist
from reprobuild.wheel.canonical_zip import canonicalize_wheel


def test_duplicate_wheel_member_is_refused() -> None:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as z:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name; that is the point
        z.writestr("pkg/__init__.py", b"a")
        z.writestr("pkg/__init__.py", b"b")
        z.writestr("pkg-1.0.dist-info/RECORD", b"")
    with pytest.raises(WheelError, match=r"duplicate members \['pkg/__init__.py'\]") as err:
        canonicalize_wheel(buf.getvalue(), Epoch(0, "config"), "pkg-1.0-py3-none-any.whl")
    assert err.value.hint == "the build backend wrote a broken wheel"


def _sdist(*members: tuple[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    return gzip.compress(raw.getvalue())


def test_conflicting_duplicate_sdist_member_is_refused_by_name() -> None:
    data = _sdist(("pkg-1.0/setup.py", b"a"), ("pkg-1.0/setup.py", b"b"))
    with pytest.raises(WheelError, match=r"'pkg-1.0/setup.py' appears more than once with different") as err:
        canonicalize_sdist(data, Epoch(0, "config"), "pkg-1.0.tar.gz")
    assert err.value.hint is not None and "broken sdist" in err.value.hint


def test_identical_duplicate_sdist_member_is_kept_once_and_reported() -> None:
    """hatchling and scikit-build-core write PKG-INFO twice; uv and pip accept that, and so do we."""
    data = _sdist(("pkg-1.0/PKG-INFO", b"Name: pkg\n"), ("pkg-1.0/a.py", b"x"), ("pkg-1.0/PKG-INFO", b"Name: pkg\n"))
    said: list[str] = []
    out = canonicalize_sdist(data, Epoch(0, "config"), "pkg-1.0.tar.gz", on_collapse=said.append)
    with tarfile.open(fileobj=io.BytesIO(out), mode="r:gz") as t:
        assert t.getnames() == ["pkg-1.0/PKG-INFO", "pkg-1.0/a.py"]
        member = t.extractfile("pkg-1.0/PKG-INFO")
        assert member is not None and member.read() == b"Name: pkg\n"
    assert said == ["pkg-1.0.tar.gz: 'pkg-1.0/PKG-INFO' was written 2 times with the same content; kept once"]
    # The same sdist without the duplicate canonicalises to the same bytes.
    single = _sdist(("pkg-1.0/PKG-INFO", b"Name: pkg\n"), ("pkg-1.0/a.py", b"x"))
    assert canonicalize_sdist(single, Epoch(0, "config"), "pkg-1.0.tar.gz") == out
