"""The build context of the equivalent Dockerfile, and a real `docker build` of it (the benchmark peer)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from reprobuild.config import load_config
from reprobuild.dockerfile import prepare_context, render_dockerfile, wheels_from_dir
from reprobuild.errors import DigestMismatchError, LockError, ReproBuildError
from reprobuild.lock.reader import read_lock
from reprobuild.uvbin import find_uv
from tests.oci.rootfs import RootfsUnavailable, debian_rootfs
from tests.templates.helpers import EXAMPLE
from tests.testbed import Engine, unavailable

NUMPY = "numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"


def _project_wheel(tmp_path: Path) -> Path:
    """A file named like the example's wheel (prepare_context checks names and hashes, not contents)."""
    wheel = tmp_path / "hello_ml-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not really a zip")
    return wheel


def test_wrong_bytes_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    fake = tmp_path / NUMPY
    fake.write_bytes(b"these are not the locked bytes")
    dest = tmp_path / "ctx"
    with pytest.raises(DigestMismatchError, match="numpy"):
        prepare_context(config, "cpu", [fake], _project_wheel(tmp_path), dest, base_image="b")
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ctx")] == []


def test_wheels_must_match_the_lock(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    project = _project_wheel(tmp_path)
    with pytest.raises(LockError, match="no wheel given for 1 distribution"):
        prepare_context(config, "cpu", [], project, tmp_path / "a", base_image="b")
    other = tmp_path / "numpy-1.0.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    other.write_bytes(b"x")
    with pytest.raises(LockError, match=r"pins numpy==2\.4\.6"):
        prepare_context(config, "cpu", [other], project, tmp_path / "b", base_image="b")
    stray = tmp_path / "six-1.0.0-py3-none-any.whl"
    stray.write_bytes(b"x")
    with pytest.raises(LockError, match="not pinned"):
        prepare_context(config, "cpu", [stray], project, tmp_path / "c", base_image="b")
    fake = tmp_path / NUMPY
    fake.write_bytes(b"x")
    with pytest.raises(ReproBuildError, match="not a wheel of 'hello-ml'"):
        prepare_context(config, "cpu", [fake], stray, tmp_path / "d", base_image="b")
    assert not any((tmp_path / d).exists() for d in "abcd")


def test_existing_destination_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    with pytest.raises(ReproBuildError, match="already exists"):
        prepare_context(load_config(EXAMPLE), "cpu", [], _project_wheel(tmp_path), tmp_path / "ctx", base_image="b")


def test_wheels_from_dir_checks_hashes(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / NUMPY).write_bytes(b"wrong bytes")
    with pytest.raises(LockError, match=r"holds no wheel that cpu\.txt allows for: numpy"):
        wheels_from_dir(load_config(EXAMPLE), "cpu", tmp_path)


# ---------------------------------------------------------------------------------------------
# A real build: the example's `cpu` target on a Debian bookworm rootfs with python3 (no pip), offline.


@pytest.fixture(scope="module")
def locked_wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The example's `cpu` wheels, fetched into repro-build's verified wheel cache (needs the index)."""
    from reprobuild.image.wheels import WheelCache, select_wheels

    config = load_config(EXAMPLE)
    target = config.target("cpu")
    try:
        pins = select_wheels(EXAMPLE, target, EXAMPLE / "repro-locks" / "cpu.txt")
        cache = WheelCache(staging=tmp_path_factory.mktemp("wheels"))
        return [cache.fetch(pin, url) for pin, url in pins]
    except ReproBuildError as e:
        unavailable("the package index", str(e))


@pytest.fixture(scope="module")
def python_base(engine: Engine) -> str:
    """`mmdebstrap --variant=minbase --include=python3 bookworm`, imported into the engine (cached tar)."""
    try:
        tar = debian_rootfs(variant="minbase", include=("python3",))
    except RootfsUnavailable as e:
        unavailable("a Debian rootfs (mmdebstrap)", str(e))
    tag = f"repro-build-tests/debian-python3:{tar.stem.rsplit('-', 1)[-1]}"
    probe = subprocess.run([engine.cli, "image", "inspect", tag], capture_output=True, check=False)
    if probe.returncode != 0:
        subprocess.run([engine.cli, "import", str(tar), tag], check=True, capture_output=True)
    return tag


@pytest.mark.slow
@pytest.mark.engine
@pytest.mark.network
def test_docker_build_of_the_equivalent_dockerfile(
    tmp_path: Path, engine: Engine, locked_wheels: list[Path], python_base: str
) -> None:
    project = tmp_path / "hello-ml"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("build", "dist"))
    # An env value BuildKit would expand or cut if it were not escaped.
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8").replace(
        'entrypoint = ["hello-ml"]', 'entrypoint = ["hello-ml"]\nenv = { ODD = "a \\"b\\" $HOME \\\\ c" }'
    )
    pyproject.write_text(text, encoding="utf-8")
    config = load_config(project)
    dist = tmp_path / "dist"
    subprocess.run(
        [find_uv(), "build", "--wheel", "--quiet", "--out-dir", str(dist), str(project)],
        check=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
    )
    project_wheel = next(dist.glob("*.whl"))
    context = tmp_path / "context"
    files = prepare_context(config, "cpu", locked_wheels, project_wheel, context, base_image=python_base)
    # Everything listed is there with the recorded hash, and the lock's hash check holds for the wheels.
    for f in files:
        assert hashlib.sha256((context / f.path).read_bytes()).hexdigest() == f.sha256
    numpy_hash = next(f.sha256 for f in files if f.path.startswith("wheels/numpy-"))
    assert numpy_hash in read_lock(context / "locks" / "cpu.txt")[canonicalize_name("numpy")].hashes
    assert (context / "Dockerfile").read_text() == render_dockerfile(config, "cpu", base_image=python_base)

    tag = f"repro-build-tests/dockerfile-peer:{tmp_path.name.lower()}"
    build = subprocess.run(
        [engine.cli, "build", "--network", "none", "--build-arg", "REVISION=abc123", "-t", tag, str(context)],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        check=False,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    try:
        run = subprocess.run(
            [engine.cli, "run", "--rm", "--network", "none", tag], capture_output=True, text=True, check=True
        )
        result = json.loads(run.stdout)
        assert result["hello-ml"] == "0.1.0" and result["PYTHONHASHSEED"] == "0"
        assert result["checksum"] > 0
        inspect = json.loads(
            subprocess.run([engine.cli, "image", "inspect", tag], capture_output=True, text=True, check=True).stdout
        )[0]
        env = dict(e.split("=", 1) for e in inspect["Config"]["Env"])
        assert env["ODD"] == 'a "b" $HOME \\ c'
        assert env["OPENBLAS_NUM_THREADS"] == "1" and env["PYTHONHASHSEED"] == "0"
        assert inspect["Config"]["Entrypoint"] == ["hello-ml"]
        assert inspect["Config"]["Labels"]["org.opencontainers.image.revision"] == "abc123"
        # The determinism hook is importable from the image's site-packages; uv and the wheels are not in it
        # (BuildKit leaves the bind-mount points as empty directories).
        check = subprocess.run(
            [
                engine.cli, "run", "--rm", "--network", "none", "--entrypoint", "python3", tag, "-c",
                "import _repro_build_determinism_doctor, importlib.util, os, numpy; "
                "print([f for _, _, fs in os.walk('/tmp/repro-build') for f in fs], numpy.__version__, "
                "open(importlib.util.cache_from_source(numpy.__file__), 'rb').read(8)[4:].hex())",
            ],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        # Like repro-build's image (`bytecode = "unchecked-hash"`, the default), numpy ships PEP 552 pycs.
        assert check.stdout.split() == ["[]", "2.4.6", "01000000"]
    finally:
        subprocess.run([engine.cli, "image", "rm", "-f", tag], capture_output=True, check=False)


def test_wheels_from_a_cache_without_them_name_what_is_missing(tmp_path: Path) -> None:
    """repro-build's cache as --wheels-dir: names come from the lock's record; a wrong blob is no copy."""
    from reprobuild.dockerfile import is_cache, wheels_from_cache

    sha = "89cd468399cfd2504718f0ba50e410dca55a170b61a02ad92bb18c8a65186e93"  # numpy's, recorded in inputs.json
    cache = tmp_path / "cache"
    (cache / "blobs" / "sha256").mkdir(parents=True)
    assert is_cache(cache) and not is_cache(tmp_path)
    (cache / "blobs" / "sha256" / sha).write_bytes(b"poison under numpy's digest")
    with pytest.raises(LockError, match=f"holds no verified copy of: {NUMPY}"):
        wheels_from_cache(load_config(EXAMPLE), "cpu", cache, tmp_path / "stage")
    assert not (cache / "blobs" / "sha256" / sha).exists()
    assert not (tmp_path / "stage" / NUMPY).exists()


@pytest.mark.network
def test_wheels_from_the_cache_are_the_locked_files(locked_wheels: list[Path], tmp_path: Path) -> None:
    from reprobuild.cache import cache_root
    from reprobuild.dockerfile import wheels_from_cache

    got = wheels_from_cache(load_config(EXAMPLE), "cpu", cache_root(), tmp_path / "stage")
    assert [p.name for p in got] == [p.name for p in locked_wheels] == [NUMPY]
    assert got[0].parent == tmp_path / "stage" and got[0].read_bytes() == locked_wheels[0].read_bytes()
