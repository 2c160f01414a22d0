"""Debian's reprotest on repro-build's wheels and images: the check the reproducible-builds community runs.

reprotest builds a copy of the project twice, the second time with every variation it knows applied
at once, and compares the artifacts with diffoscope. Variations (``VARIATIONS``): build path, time
(faketime), file ordering (a disorderfs FUSE mount that shuffles directory entries), kernel
(``setarch``: uname), ASLR, number of CPUs (``taskset``), locale (``et_EE.UTF-8``), time zone,
umask, HOME, environment, PATH and host/domain name (``unshare --uts``). Left out, and why:

* ``user_group``: runs the second build as another account through ``sudo``; it needs a second
  account and passwordless sudo configured on the machine (reprotest's ``user_group.available``),
  and a test does not create system accounts (the CI machine has no sudo at all).

File systems: reprotest's temporary directory (``TMPDIR``, where both project copies are built) is a
tmpfs mounted by the test. The cache follows reprotest's ``home`` variation: the first build's HOME
is its own work tree, so ``~/.cache/repro-build`` lies *inside* the tree (the tool's own cache must
not make the tree dirty); the second build's HOME is ``/nonexistent/second-build`` on the disk, so
every move from the build tree into the cache crosses file systems. Both builds start from an empty
cache. Runs once per suite, about 6 minutes (each image is built from scratch twice).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testbed import unavailable
from tests.wheel.fixtures import commit_all, git, make_repo

pytestmark = [pytest.mark.reprotest, pytest.mark.network, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello-ml"
VARIATIONS = "+all,-user_group"
#: Where reprotest's `home` variation points the second build; as root the build creates it.
SECOND_HOME = Path("/nonexistent/second-build")
#: What a variation needs: the command, or the file, that must exist.
TOOLS = ("reprotest", "faketime", "disorderfs", "fusermount", "diffoscope", "setarch", "taskset", "unshare")
APT_HINT = "apt-get install reprotest faketime disorderfs diffoscope-minimal locales, and generate et_EE.UTF-8"


@pytest.fixture(scope="module")
def reprotest_ready() -> None:
    """Every tool a variation needs; fails under CI (never a silently weaker run), skips elsewhere."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        unavailable(f"reprotest's variations ({', '.join(missing)})", APT_HINT)
    if not Path("/dev/fuse").exists():
        unavailable("/dev/fuse (disorderfs's file ordering variation)", "run on a machine with FUSE")
    locales = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout.split()
    if "et_EE.utf8" not in locales:
        unavailable("the et_EE.UTF-8 locale (the locales variation)", APT_HINT)
    if os.geteuid() != 0:
        unavailable("root", "reprotest's null server, the tmpfs mount and unshare --uts need root here")


@pytest.fixture
def build_area(other_fs: Path) -> Iterator[Path]:
    """reprotest's TMPDIR on a tmpfs; the second build's HOME starts empty and is removed afterwards."""
    shutil.rmtree(SECOND_HOME, ignore_errors=True)
    yield other_fs
    shutil.rmtree(SECOND_HOME, ignore_errors=True)
    with contextlib.suppress(OSError):
        SECOND_HOME.parent.rmdir()  # only when empty: /nonexistent is not ours otherwise


def reprotest(source: Path, command: str, artifacts: str, *, tmpdir: Path, store: Path) -> str:
    """Run reprotest on ``source``; fail with its diffoscope summary unless both builds are identical."""
    env = {k: v for k, v in os.environ.items() if k not in {"REPRO_BUILD_CACHE", "XDG_CACHE_HOME"}}
    # `repro-build` from the interpreter running the tests (the nox venv), then the rest of PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(tmpdir)
    argv = [
        "reprotest",
        f"--vary={VARIATIONS}",
        "--min-cpus=1",
        f"--store-dir={store}",
        "-c",
        command,
        str(source),
        artifacts,
    ]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if out.returncode != 0 or "Reproduction successful" not in out.stdout:
        pytest.fail(
            f"`{' '.join(argv)}` exited {out.returncode}; artifacts and diffoscope output in {store}\n"
            f"--- stdout (diffoscope summary) ---\n{out.stdout[-20000:]}\n--- stderr ---\n{out.stderr[-8000:]}",
            pytrace=False,
        )
    return out.stdout


def _example_repo(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("build", "dist", "__pycache__"))
    git(dest, "init", "-q", "-b", "main")
    commit_all(dest, "the example")
    return dest


def test_example_wheel(reprotest_ready: None, build_area: Path, tmp_path: Path) -> None:
    project = _example_repo(tmp_path / "hello-ml")
    out = reprotest(project, "repro-build wheel --out-dir dist", "dist/*", tmpdir=build_area, store=tmp_path / "out")
    assert "hello_ml-0.1.0-py3-none-any.whl" in out and "hello_ml-0.1.0.tar.gz" in out


def test_setuptools_c_extension_wheel(reprotest_ready: None, build_area: Path, tmp_path: Path) -> None:
    config = make_repo("setuptools_cext", tmp_path / "cext")
    store = tmp_path / "out"
    out = reprotest(config.root, "repro-build wheel --out-dir dist", "dist/*", tmpdir=build_area, store=store)
    wheels = [p.name for p in (store / "control" / "source-root" / "dist").glob("*.whl")]
    assert len(wheels) == 1 and wheels[0].startswith("cext-1.0.0-cp3"), wheels  # a platform wheel, compiled
    assert wheels[0] in out


def test_example_cpu_image(reprotest_ready: None, build_area: Path, tmp_path: Path) -> None:
    project = _example_repo(tmp_path / "hello-ml")
    out = reprotest(
        project, "repro-build image --target cpu", "build/cpu/image.tar", tmpdir=build_area, store=tmp_path / "out"
    )
    assert "./build/cpu/image.tar" in out


def test_setuptools_c_extension_cpu_image(reprotest_ready: None, build_area: Path, tmp_path: Path) -> None:
    """The zero-config `cpu` image of a compiled project: its wheel is built inside `image` under every variation."""
    config = make_repo("setuptools_cext", tmp_path / "cext")
    assert (config.root / "repro-locks" / "cpu.txt").is_file()  # make_repo locked every target, base included
    out = reprotest(
        config.root, "repro-build image --target cpu", "build/cpu/image.tar", tmpdir=build_area, store=tmp_path / "out"
    )
    assert "./build/cpu/image.tar" in out


def test_a_difference_fails_with_the_diffoscope_summary(
    reprotest_ready: None, build_area: Path, tmp_path: Path
) -> None:
    """The harness itself: a build that writes its HOME and clock is caught, and diffoscope says where."""
    source = tmp_path / "leaky"
    source.mkdir()
    (source / "build.sh").write_text('mkdir -p out\nprintf "%s\\n" "$HOME" "$(date +%s%N)" > out/stamp\n')
    with pytest.raises(pytest.fail.Exception) as info:
        reprotest(source, "sh build.sh", "out/*", tmpdir=build_area, store=tmp_path / "out")
    message = str(info.value)
    assert "exited 1" in message
    assert "out/stamp" in message and "/nonexistent/second-build" in message  # diffoscope's line diff
