"""Compiler flags are added, never replaced: a C extension built by repro-build is compiled like one
built by plain ``uv build`` (same optimisation, ``NDEBUG``, code and symbols), apart from the paths.

setuptools replaces the interpreter's ``-DNDEBUG -g -fwrapv -O3 -Wall`` with ``$CFLAGS`` when that is
set; repro-build's prefix map travels in ``CPPFLAGS``, which setuptools appends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from reprobuild.uvbin import find_uv
from reprobuild.wheel.buildenv import USER_FLAGS
from tests.wheel.conftest import Projects
from tests.wheel.fixtures import PACKAGES

pytestmark = [pytest.mark.network, pytest.mark.slow]

_PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("cext._speed", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
print(json.dumps({"optimized": mod.optimized(), "ndebug": mod.ndebug(), "add": mod.add(2, 3)}))
"""


def _extension(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as z:
        [name] = [n for n in z.namelist() if n.endswith(".so")]
        z.extract(name, dest)
    return dest / name


def _probe(so: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _PROBE, str(so)], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _producers(so: Path) -> list[str]:
    """DW_AT_producer of each compile unit: GCC's version and the code-generation options (-O3, -g…)."""
    out = subprocess.run(["readelf", "--debug-dump=info", str(so)], capture_output=True, text=True, check=True)
    return sorted(
        set(re.findall(r"DW_AT_producer\s*:\s*(?:\(indirect string, offset: 0x[0-9a-f]+\):\s*)?(.+)", out.stdout))
    )


def _symbols(so: Path) -> list[str]:
    out = subprocess.run(["nm", "--defined-only", str(so)], capture_output=True, text=True, check=True)
    return sorted(line.split()[-1] for line in out.stdout.splitlines() if line.strip())


def _text_size(so: Path) -> int:
    out = subprocess.run(["readelf", "-S", "-W", str(so)], capture_output=True, text=True, check=True)
    m = re.search(r"\]\s+\.text\s+PROGBITS\s+\S+\s+\S+\s+([0-9a-f]+)", out.stdout)
    assert m, out.stdout
    return int(m.group(1), 16)


def test_c_extension_is_compiled_like_plain_uv_build(projects: Projects, tmp_path: Path) -> None:
    config = projects.config("setuptools_cext")
    result = projects.check("setuptools_cext")
    wheel = next(c for c in result.comparisons if c.kind == "wheel")
    ours = _extension(projects.root / "setuptools_cext-report" / "a" / wheel.a.filename, tmp_path / "ours")

    # Plain `uv build` of the same source with the same pinned backend, no flags from the caller.
    env = {k: v for k, v in os.environ.items() if k not in USER_FLAGS}
    subprocess.run(
        [
            find_uv(),
            "build",
            str(PACKAGES / "setuptools_cext"),
            "--wheel",
            "--out-dir",
            str(tmp_path / "plain-dist"),
            "--build-constraints",
            str(config.locks_dir / "build.txt"),
            "--require-hashes",
            "--python",
            config.python,
            "--no-create-gitignore",
        ],
        env=env,
        capture_output=True,
        check=True,
    )
    [plain_wheel] = (tmp_path / "plain-dist").glob("*.whl")
    plain = _extension(plain_wheel, tmp_path / "plain")

    assert _probe(ours) == _probe(plain) == {"optimized": True, "ndebug": True, "add": 5}
    producers = _producers(ours)
    assert producers == _producers(plain)
    assert any("-O3" in p for p in producers), producers
    assert _symbols(ours) == _symbols(plain)
    assert _text_size(ours) == _text_size(plain)


def test_callers_flags_are_kept_and_recorded(fresh_project: object, tmp_path: Path) -> None:
    """A caller's CFLAGS reach the compiler (here: -O0 undoes __OPTIMIZE__) and the build record."""
    from reprobuild.wheel.build import build_wheel

    assert callable(fresh_project)
    config = fresh_project("setuptools_cext")
    old = os.environ.get("CFLAGS")
    os.environ["CFLAGS"] = "-O0"
    try:
        record = build_wheel(config, out_dir=tmp_path / "dist", sdist=False)
    finally:
        if old is None:
            os.environ.pop("CFLAGS")
        else:
            os.environ["CFLAGS"] = old
    so = _extension(tmp_path / "dist" / record.artifacts[0].filename, tmp_path / "x")
    assert _probe(so)["optimized"] is False
    env = dict(record.environment)
    assert env["CFLAGS"] == "-O0"
    assert env["CPPFLAGS"] == "-ffile-prefix-map=<build-root>=."
