"""An archive with a member name twice is ambiguous: both canonicalisers refuse it."""

from __future__ import annotations

import gzip
import io
import tarfile
import warnings
import zipfile

import pytest

from repro_build.epoch import Epoch
from repro_build.errors import WheelError
from repro_build.wheel.canonical_sdist import canonicalize_sdist
from repro_build.wheel.canonical_zip import canonicalize_wheel


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


def test_duplicate_sdist_member_is_refused() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for body in (b"a", b"b"):
            info = tarfile.TarInfo("pkg-1.0/setup.py")
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    with pytest.raises(WheelError, match="duplicate members") as err:
        canonicalize_sdist(gzip.compress(raw.getvalue()), Epoch(0, "config"), "pkg-1.0.tar.gz")
    assert err.value.hint == "the build backend wrote a broken sdist"
