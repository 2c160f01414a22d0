"""The compressed bytes do not come from the host: golden digests, and the same bytes with libz swapped.

Python's ``zlib`` links the system's ``libz.so.1``. Each run below starts a Python whose
``LD_LIBRARY_PATH`` puts another libz first (Debian 13's zlib 1.3.1, zlib-ng in compat mode), checks
inside that process that ``zlib.ZLIB_RUNTIME_VERSION`` is the swapped library, and prints the digests of
:mod:`tests.oci.compress_samples`. Layers (gzip and zstd), wheels and sdists must not change; Python's
own ``zlib`` output is printed as a control that the swap took effect.

Golden digests live in ``golden-compress.json``, keyed by the compressor versions that produced them
(what the build manifest records): a new pinned compressor needs a new entry, written by
``nox -s golden`` (tests/golden.py); nothing else may move them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.golden import Golden, compressor_key
from tests.oci import hostzlib
from tests.oci.compress_samples import digests

GOLDEN = Path(__file__).with_name("golden-compress.json")
ROOT = Path(__file__).resolve().parents[2]
#: Outputs that must never depend on the host's libz.
PINNED = ("gzip_1mib", "zstd_1mib", "layer_gzip", "layer_zstd", "layer_diff_id", "wheel", "sdist")


def _in_subprocess(libdir: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    if libdir is not None:
        env["LD_LIBRARY_PATH"] = str(libdir)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.oci.compress_samples"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, str] = json.loads(proc.stdout)
    return result


def test_golden_digests_keyed_by_compressor_version(golden: Golden) -> None:
    golden.digests(GOLDEN, {k: v for k, v in digests().items() if k in PINNED})


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize(
    ("fetch", "runtime"),
    [(hostzlib.trixie_zlib, hostzlib.TRIXIE_ZLIB_RUNTIME), (hostzlib.zlib_ng_compat, hostzlib.ZLIB_NG_RUNTIME)],
    ids=["zlib-1.3.1-debian13", "zlib-ng-compat"],
)
def test_same_bytes_with_the_system_libz_swapped(fetch: Any, runtime: str) -> None:
    host = _in_subprocess(None)
    swapped = _in_subprocess(fetch())
    assert swapped["zlib_runtime"] == runtime != host["zlib_runtime"]
    assert {k: swapped[k] for k in PINNED} == {k: host[k] for k in PINNED}
    golden = json.loads(GOLDEN.read_text())[compressor_key()]
    assert {k: swapped[k] for k in PINNED} == golden
    if runtime == hostzlib.ZLIB_NG_RUNTIME:
        # The control: the same input through Python's zlib does change with zlib-ng, so the library
        # really was swapped and the equality above is not vacuous.
        assert swapped["zlib_control"] != host["zlib_control"]
