"""A real C extension (msgpack 1.1.0's ``_cmsgpack``) built by repro-build and by plain ``uv build``: does
it run as fast?

The sdist is pinned by sha256 and fetched into the test cache (``tests/sdists.py``). Three wheels are
built from the same unpacked source with the same hash-pinned backend:

* ``uv build``: plain ``uv build --wheel``, no compiler flags from the caller;
* ``repro-build``: ``repro-build lock`` then :func:`build_wheel` (sdist, then the wheel from it);
* ``CFLAGS replaced``: plain ``uv build`` with ``CFLAGS=-ffile-prefix-map=…`` — what repro-build did before
  its flags went into ``CPPFLAGS``: setuptools then drops the interpreter's ``-O3 -DNDEBUG``.

Each wheel is unpacked into its own directory and timed in a fresh interpreter: ``packb`` + ``unpackb``
of a mixed document, best of ``--rounds`` (interleaved). The ratio to plain ``uv build`` is what to read.

    .venv/bin/python benchmarks/bench_cext_speed.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sdists import Sdist, fetch, unpack

from reprobuild.config import load_config
from reprobuild.epoch import Epoch
from reprobuild.lock.compile import lock_project
from reprobuild.uvbin import find_uv
from reprobuild.wheel.build import build_wheel
from reprobuild.wheel.buildenv import USER_FLAGS

#: sha256 from `pip download --no-deps --no-binary :all: msgpack==1.1.0` + `sha256sum` (PyPI's sdist).
MSGPACK = Sdist("msgpack", "1.1.0", "dd432ccc2c72b914e4cb77afce64aab761c1137cc698be3984eee260bcb2896e")

_TIMER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import msgpack
from msgpack import _cmsgpack  # the C extension, not the pure-Python fallback
assert msgpack.Packer is _cmsgpack.Packer
doc = {"ints": list(range(2000)), "floats": [i / 7 for i in range(2000)],
       "strs": [f"key-{i}" * 3 for i in range(2000)], "nested": [{"a": i, "b": [i, str(i)]} for i in range(2000)]}
best = float("inf")
for _ in range(5):
    t = time.perf_counter()
    for _ in range(40):
        msgpack.unpackb(msgpack.packb(doc))
    best = min(best, time.perf_counter() - t)
print(json.dumps({"seconds": best}))
"""


def _plain_build(pristine: Path, out: Path, lock: Path, python: str, extra_env: dict[str, str]) -> Path:
    # A fresh copy each time: setuptools skips compiling when build/ in the source has up-to-date objects.
    src = out.with_name(out.name + "-src")
    shutil.copytree(pristine, src)
    env = {k: v for k, v in os.environ.items() if k not in USER_FLAGS} | extra_env
    cmd = [find_uv(), "build", str(src), "--wheel", "--out-dir", str(out), "--build-constraints", str(lock)]
    cmd += ["--require-hashes", "--python", python, "--no-create-gitignore", "--quiet"]
    subprocess.run(cmd, env=env, check=True)
    [wheel] = out.glob("*.whl")
    return wheel


def _unpacked(wheel: Path, dest: Path) -> tuple[Path, int]:
    with zipfile.ZipFile(wheel) as z:
        z.extractall(dest)
        size = sum(i.file_size for i in z.infolist() if i.filename.endswith(".so"))
    return dest, size


def _time(path: Path) -> float:
    out = subprocess.run([sys.executable, "-c", _TIMER, str(path)], capture_output=True, text=True, check=True)
    seconds: float = json.loads(out.stdout)["seconds"]
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    archive = fetch(MSGPACK)
    with tempfile.TemporaryDirectory(prefix="bench-cext-") as tmp:
        work = Path(tmp)
        src = unpack(archive, work / "src")
        project = work / "project"
        shutil.copytree(src, project)
        config = load_config(project)
        lock_project(config)
        config = load_config(project)
        lock = config.locks_dir / "build.txt"
        wheels = {
            "uv build": _plain_build(src, work / "plain", lock, config.python, {}),
            "repro-build": work
            / "ours"
            / build_wheel(config, out_dir=work / "ours", epoch=Epoch(1704164645, "config")).artifacts[-1].filename,
            "CFLAGS replaced": _plain_build(
                src, work / "replaced", lock, config.python, {"CFLAGS": f"-ffile-prefix-map={work}=."}
            ),
        }
        dirs = {label: _unpacked(w, work / f"site-{i}") for i, (label, w) in enumerate(wheels.items())}
        best = {label: float("inf") for label in wheels}
        for _ in range(args.rounds):
            for label, (path, _size) in dirs.items():
                best[label] = min(best[label], _time(path))
        print(
            f"msgpack {MSGPACK.version} sdist sha256:{MSGPACK.sha256[:16]}…, Python {config.python}, "
            f"best of {args.rounds} rounds of 5x40 packb+unpackb"
        )
        base = best["uv build"]
        for label, (_path, size) in dirs.items():
            print(
                f"  {label:<16} .so {size / 1024:7.0f} KiB   {best[label] * 1000:7.1f} ms   "
                f"{best[label] / base:5.2f}x the time of plain uv build"
            )
        fast = best["repro-build"] / base
        print(f"  repro-build within 10% of plain uv build: {fast < 1.10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
