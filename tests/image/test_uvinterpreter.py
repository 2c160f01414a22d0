"""What uv learnt about the host's interpreter, kept between installs (image/uvinterpreter.py): used only
when sealed by this machine's key, only under uv's own record names, and the installed files unchanged."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from reprobuild.cachekey import write_sealed
from reprobuild.config import Target
from reprobuild.image import uvinterpreter
from reprobuild.image.pyenv import install_wheels
from reprobuild.image.wheels import WheelPin
from reprobuild.uvbin import run_uv


def install_target() -> Target:
    """All that installing needs of a target: uv's interpreter and platform options."""
    return cast(
        Target,
        SimpleNamespace(uv_platform_args=["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_36"]),
    )


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_BUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("REPRO_BUILD_CACHE_KEY", raising=False)


@pytest.fixture
def small_wheel(tmp_path: Path) -> tuple[WheelPin, Path]:
    """A one-module wheel with a console script."""
    files = {
        "demo/__init__.py": b"def main():\n    return 0\n",
        "demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
        "demo-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        "demo-1.0.dist-info/entry_points.txt": b"[console_scripts]\ndemo = demo:main\n",
    }
    rows = [
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}"
        for n, d in files.items()
    ]
    files["demo-1.0.dist-info/RECORD"] = ("\n".join([*rows, "demo-1.0.dist-info/RECORD,,"]) + "\n").encode()
    path = tmp_path / "wheels" / "demo-1.0-py3-none-any.whl"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    data = path.read_bytes()
    return WheelPin("demo", "1.0", path.name, hashlib.sha256(data).hexdigest(), len(data)), path


def _install(wheel: tuple[WheelPin, Path], target: Target, dest: Path, python: Path) -> dict[str, bytes]:
    install_wheels([wheel], target, dest, what="test", python=python)
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in sorted(dest.rglob("*")) if p.is_file()}


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each uv install that follows: whether uv started the interpreter to ask about it (uv's trace
    says "skipping query" when it took the record it found in its cache instead)."""
    seen: list[bool] = []

    def traced(args: Sequence[str], *, env: Mapping[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        out = run_uv(
            ["-v" if a == "--quiet" else a for a in args], env={**env, "RUST_LOG": "uv_python=trace"}, **kwargs
        )
        seen.append("skipping query" not in out.stderr)
        return out

    monkeypatch.setattr("reprobuild.image.pyenv.run_uv", traced)
    return seen


def test_the_second_install_does_not_start_the_interpreter_and_installs_the_same_files(
    small_wheel: tuple[WheelPin, Path], tmp_path: Path, queries: list[bool]
) -> None:
    target = install_target()
    python = Path(sys.executable)
    first = _install(small_wheel, target, tmp_path / "first", python)
    second = _install(small_wheel, target, tmp_path / "second", python)
    assert queries == [True, False]  # the second took the sealed record
    assert second == first
    assert not list(tmp_path.glob(".*uv-cache-*"))  # each install's own uv cache is gone


def test_an_edited_record_is_removed_and_the_interpreter_asked_again(
    small_wheel: tuple[WheelPin, Path], tmp_path: Path, queries: list[bool]
) -> None:
    target = install_target()
    python = Path(sys.executable)
    _install(small_wheel, target, tmp_path / "first", python)
    [entry] = (Path(os.environ["REPRO_BUILD_CACHE"]) / "uvinterpreter").glob("*.json")
    entry.write_text(entry.read_text().replace("interpreter-v", "interpreter-w", 1))  # the seal breaks
    _install(small_wheel, target, tmp_path / "second", python)
    _install(small_wheel, target, tmp_path / "third", python)
    assert queries == [True, True, False]  # asked again, then sealed anew


def test_a_build_that_reads_no_cache_asks_the_interpreter(
    small_wheel: tuple[WheelPin, Path], tmp_path: Path, queries: list[bool]
) -> None:
    """verify's rebuild reads no sealed entry: uv asks the interpreter even with a record in the cache."""
    target = install_target()
    python = Path(sys.executable)
    _install(small_wheel, target, tmp_path / "first", python)
    install_wheels([small_wheel], target, tmp_path / "second", what="test", python=python, interpreter_record=False)
    assert queries == [True, True]


@pytest.mark.parametrize(
    "name", ["../../outside.msgpack", "archive-v0/abc.msgpack", "interpreter-v5/../../x.msgpack", "/etc/x"]
)
def test_a_sealed_entry_naming_another_file_is_refused(tmp_path: Path, name: str) -> None:
    """Even sealed with the key, an entry writes only uv's interpreter records into the fresh cache."""
    python = Path(sys.executable)
    path = uvinterpreter._entry_path(python)
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    write_sealed(path, {"key": path.stem, "files": {name: base64.b64encode(b"hostile").decode()}})
    fresh = tmp_path / "a" / "b" / "fresh"
    fresh.mkdir(parents=True)
    assert uvinterpreter.restore(python, fresh) == {}
    assert [p for p in (tmp_path / "a").rglob("*") if p.is_file()] == []
    assert not Path("/etc/x").exists()
