"""`repro-build image` without an engine: golden digest, determinism, base checks, layer reuse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reprobuild.config import load_config
from reprobuild.errors import BaseImageError
from reprobuild.image.build import ImageResult, build_image
from reprobuild.image.projectwheel import wheel_step
from tests.golden import Golden, compressor_key
from tests.image.conftest import GOLDEN_PROJECT, copy_project
from tests.image.fakebase import fake_base

GOLDEN = Path(__file__).parent / "golden.json"

pytestmark = pytest.mark.network  # the locked wheels come from the package index (then from the cache)


def build(root: Path, target: str = "cpu") -> ImageResult:
    return build_image(load_config(root), target, project_wheel=wheel_step())


def summary(result: ImageResult) -> dict[str, object]:
    return {
        "manifest_digest": result.digest,
        "config_digest": str(result.image.config_digest),
        "layers": [{"holds": r.holds, "digest": r.digest, "diff_id": r.diff_id} for r in result.layers],
    }


def golden_key(result: ImageResult) -> str:
    """The versions the golden image's bytes depend on beyond its locked inputs: the compressors, and the
    interpreter that compiled its .pyc files (`uv python find` picks it on this machine)."""
    compiler = result.bytecode["compiler"]
    return f"{compressor_key()}; pyc: {compiler['implementation']} {compiler['version']}"


@pytest.mark.parametrize("cached_env", [False, True], ids=["uv-build", "cached-backend-env"])
def test_golden_digest(golden_project: Path, golden: Golden, cached_env: bool) -> None:
    """The whole image is pinned by one digest; refresh it only with `nox -s golden`. The same digest
    whether the project wheel comes from `uv build` (``verify``) or from the backend's hooks in the
    cached environment (``image``, :mod:`reprobuild.wheel.hookrunner`)."""
    result = build_image(load_config(golden_project), "cpu", project_wheel=wheel_step(cached_env=cached_env))
    golden.digests(GOLDEN, summary(result), key=golden_key(result))


def test_layers_config_and_hook(golden_project: Path) -> None:
    result = build(golden_project)
    holds = [r.holds for r in result.layers]
    assert holds == ["base", "third-party wheels", "project golden-app", "app"]
    assert result.layers[1].distributions == ("six",)
    assert [(p.name, i) for p, i in result.wheels] == [("six", 1)]
    config = result.image.config
    env = dict(e.split("=", 1) for e in config["config"]["Env"])
    assert env["PYTHONHASHSEED"] == "0" and env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8" and env["GOLDEN"] == "1"
    assert env["PATH"].startswith("/usr/local/sbin:/usr/local/bin")
    assert config["config"]["Entrypoint"] == ["golden-app"]
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert all(h["created"] == "2023-11-14T22:13:20Z" for h in config["history"])
    for key in ("hostname", "container", "docker_version", "author", "container_config"):
        assert key not in config
    labels = config["config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == "1.0.0"
    assert labels["org.opencontainers.image.base.digest"].startswith("sha256:")
    assert labels["org.opencontainers.image.created"] == config["created"]  # the epoch, not the build time
    assert result.image.manifest.get("annotations") == labels  # the same set as manifest annotations
    # The console script points at the image's interpreter, and the hook is installed with its .pth.
    from reprobuild.oci.safetar import read_files

    files = read_files(
        result.image.layers,
        [
            "/usr/local/bin/golden-app",
            "/usr/local/lib/python3.11/dist-packages/repro-build-determinism.pth",
            "/usr/local/lib/python3.11/dist-packages/_repro_build_determinism.json",
            "/usr/local/lib/python3.11/dist-packages/__pycache__/_repro_build_determinism.cpython-311.pyc",
            "/usr/local/lib/python3.11/dist-packages/__pycache__/six.cpython-311.pyc",
        ],
    )
    # `bytecode = "unchecked-hash"` is the default: the dependencies ship compiled too.
    assert files["/usr/local/lib/python3.11/dist-packages/__pycache__/six.cpython-311.pyc"][4:8] == b"\x01\0\0\0"
    # The hook runs at every start, so it ships compiled (PEP 552 unchecked-hash) whatever `bytecode` says.
    hook_pyc = files["/usr/local/lib/python3.11/dist-packages/__pycache__/_repro_build_determinism.cpython-311.pyc"]
    assert int.from_bytes(hook_pyc[4:8], "little") == 0b01
    assert files["/usr/local/bin/golden-app"].startswith(b"#!/usr/bin/python3.11\n")
    assert (
        b"install(('torch', ), None, (True, False, False))"
        in files["/usr/local/lib/python3.11/dist-packages/repro-build-determinism.pth"]
    )
    policy = json.loads(files["/usr/local/lib/python3.11/dist-packages/_repro_build_determinism.json"])
    assert policy["sets"] == ["python", "torch"]
    manifest = json.loads((result.layout.parent / "oci" / "index.json").read_text())
    assert manifest["manifests"][0]["digest"] == result.digest
    assert (result.archive).is_file()


def test_app_only_change_alters_only_the_top_layers(golden_project: Path) -> None:
    before = build(golden_project)
    module = golden_project / "src" / "golden_app" / "__init__.py"
    module.write_text(module.read_text().replace('"golden"', '"golden, changed"'))
    after = build(golden_project)
    assert before.digest != after.digest
    changed = [b.holds for b, a in zip(before.layers, after.layers, strict=True) if b.digest != a.digest]
    assert changed == ["project golden-app"]


def _cli_build(root: Path, cache: Path, umask: int, tz: str, lang: str) -> str:
    env = {**os.environ, "REPRO_BUILD_CACHE": str(cache), "TZ": tz, "LC_ALL": lang}
    out = subprocess.run(
        [sys.executable, "-m", "reprobuild", "image", "--project", str(root), "-q"],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=lambda: os.umask(umask),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_two_builds_from_scratch_are_identical(tmp_path: Path) -> None:
    """Fresh caches, different work dirs, umask, TZ and locale: the same manifest digest."""
    digests = []
    for i, (umask, tz, lang) in enumerate([(0o022, "Etc/GMT+12", "C.UTF-8"), (0o002, "Etc/GMT-14", "C")]):
        root = copy_project(GOLDEN_PROJECT, tmp_path / f"w{i}" / "deeper" / "golden", git=False)
        fake_base(root / "fakebase")
        digests.append(_cli_build(root, tmp_path / f"cache{i}", umask, tz, lang))
    assert digests[0] == digests[1]
    assert digests[0].startswith("sha256:")


def _with_base(root: Path, base: str) -> Path:
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    old = text.split('base = "', 1)[1].split('"', 1)[0]
    pyproject.write_text(text.replace(old, base.replace(f"{root}/", "")))
    inputs = root / "repro-locks" / "inputs.json"
    data = json.loads(inputs.read_text())
    data["locks"]["cpu.txt"]["inputs"]["base"] = base.replace(f"{root}/", "")
    inputs.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return root


@pytest.mark.parametrize(
    ("python", "glibc", "message"),
    [
        ("3.12.1", "2.36", "is locked for Python 3.11, but base"),
        ("3.11.2", "2.17", "installs manylinux_2_28 wheels (glibc >= 2.28), but base"),
    ],
)
def test_mismatched_base_is_refused(golden_project: Path, python: str, glibc: str, message: str) -> None:
    shutil.rmtree(golden_project / "fakebase")
    _with_base(golden_project, fake_base(golden_project / "fakebase", python=python, glibc=glibc))
    with pytest.raises(BaseImageError) as err:
        build(golden_project)
    assert message in err.value.message
    assert err.value.hint
    assert not (golden_project / "build" / "cpu").exists()


def test_base_without_python_is_refused(golden_project: Path, tmp_path: Path) -> None:
    from reprobuild.oci.blobstore import BlobStore
    from reprobuild.oci.compress import Compressor
    from reprobuild.oci.image import default_config, new_image
    from reprobuild.oci.layer import write_layer
    from reprobuild.oci.layout import write_layout
    from reprobuild.oci.tarwriter import LayerEntry
    from reprobuild.oci.values import Platform

    dest = golden_project / "nopython"
    layer = write_layer(
        [LayerEntry.file("/etc/hostname", b"x\n")], epoch=0, compressor=Compressor.gzip(), store=BlobStore(dest)
    )
    image = new_image(default_config(Platform("linux", "amd64"), 0), [layer])
    write_layout(dest, image)
    _with_base(golden_project, f"oci-layout:nopython@{image.digest}")
    with pytest.raises(BaseImageError, match="has no Python interpreter") as err:
        build(golden_project)
    assert err.value.hint and "debian:bookworm" in err.value.hint


def test_unchecked_hash_bytecode_is_deterministic_and_valid(golden_project: Path, tmp_path: Path) -> None:
    pyproject = golden_project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('env = { GOLDEN = "1" }', 'env = { GOLDEN = "1" }\nbytecode = "unchecked-hash"')
    )
    first = build(golden_project)
    again = copy_project(golden_project, tmp_path / "again" / "golden", git=False)
    assert build(again).digest == first.digest
    from reprobuild.oci.safetar import read_files

    pyc = "/usr/local/lib/python3.11/dist-packages/__pycache__/six.cpython-311.pyc"
    record = "/usr/local/lib/python3.11/dist-packages/six-1.17.0.dist-info/RECORD"
    files = read_files(first.image.layers, [pyc, record])
    data = files[pyc]
    import importlib.util

    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == 0b01  # PEP 552: hash-based, unchecked
    assert b"__pycache__/six.cpython-311.pyc,sha256=" in files[record]
    import marshal

    code = marshal.loads(data[16:])
    assert code.co_filename == "/usr/local/lib/python3.11/dist-packages/six.py"


def test_a_new_commit_changes_only_the_project_layer(golden_project: Path) -> None:
    """Dependency layers do not carry the project's epoch, so they survive a new commit unchanged."""
    before = build(golden_project)
    pyproject = golden_project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("source-date-epoch = 1700000000", "source-date-epoch = 1800000000")
    )
    after = build(golden_project)
    changed = [b.holds for b, a in zip(before.layers, after.layers, strict=True) if b.digest != a.digest]
    assert changed == ["project golden-app"]


def test_weights_file_gets_its_own_layer_that_survives_an_app_change(golden_project: Path) -> None:
    """A generated 200 MiB file in `files`: its own layer, recorded with its sha256, and the same layer
    digest after the app changes (only the project layer and the config change)."""
    import hashlib
    import random

    weights = golden_project / "models" / "weights.bin"
    weights.parent.mkdir()
    chunk = random.Random(0).randbytes(1 << 20)
    with weights.open("wb") as f:
        for i in range(200):
            f.write(chunk[i:] + chunk[:i])  # incompressible, and no two MiB alike
    expected = "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()
    pyproject = golden_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'files = { "models/weights.bin" = "/opt/models/weights.bin" }\n')
    first = build(golden_project)
    holds = [r.holds for r in first.layers]
    assert holds == ["base", "third-party wheels", "file /opt/models/weights.bin", "project golden-app", "app"]
    assert first.files == (
        {
            "layer": 2,
            "path": "/opt/models/weights.bin",
            "sha256": expected,
            "size": 200 << 20,
            "source": "models/weights.bin",
        },
    )
    app = golden_project / "src" / "golden_app" / "__init__.py"
    app.write_text(app.read_text() + "\n# a change of the app only\n")
    second = build(golden_project)
    assert second.layers[2].digest == first.layers[2].digest and second.layers[2].diff_id == first.layers[2].diff_id
    assert second.layers[3].digest != first.layers[3].digest
    assert second.digest != first.digest


def test_files_outside_the_project_or_missing_are_refused(golden_project: Path) -> None:
    from reprobuild.errors import ConfigError, ReproBuildError

    pyproject = golden_project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text + 'files = { "../secret" = "/opt/secret" }\n')
    with pytest.raises(ConfigError, match="inside the project"):
        load_config(golden_project)
    pyproject.write_text(text + 'files = { "models/missing.bin" = "/opt/m.bin" }\n')
    with pytest.raises(ReproBuildError, match="is not a file in the project"):
        build(golden_project)
    pyproject.write_text(text + 'files = { "models/w.bin" = "opt/relative" }\n')
    with pytest.raises(ConfigError, match="absolute file path"):
        load_config(golden_project)
