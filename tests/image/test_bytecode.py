"""Byte-code comes from an interpreter of the image's ``X.Y`` found by uv, never from the host's Python."""

from __future__ import annotations

import importlib.util
import marshal
import subprocess
import sys
from pathlib import Path

import pytest

from reprobuild.determinism.policy import HOOK_MODULE, Policy
from reprobuild.errors import ToolError
from reprobuild.image import interpreter as interp_mod
from reprobuild.image.build import app_files
from reprobuild.image.interpreter import Interpreter, find_interpreter

HOST_MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
SITE = "/usr/local/lib/python3.11/dist-packages"


@pytest.fixture(autouse=True)
def _fresh_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    interp_mod._find.cache_clear()
    monkeypatch.delenv("REPRO_BUILD_BYTECODE_PYTHON", raising=False)


def _other_minor_python() -> Path | None:
    """An interpreter of a minor version other than the host's: from uv, else a pyenv installation."""
    for minor in ("3.13", "3.12", "3.10"):
        if minor != HOST_MINOR:
            try:
                return find_interpreter(minor).path
            except ToolError:
                pass
    for path in sorted((Path.home() / ".pyenv" / "versions").glob("3.*/bin/python3.1[0-9]")):
        if path.name != f"python{HOST_MINOR}":
            return path
    return None


def test_the_hook_pyc_does_not_come_from_the_running_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the host's interpreter unusable, the hook is still compiled, for its in-image path."""
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    compiler = find_interpreter("3.11")
    files = dict(app_files(Policy(("python", "torch")), SITE, compiler, tmp_path))
    pyc = files[f"{SITE}/__pycache__/{HOOK_MODULE}.cpython-311.pyc"]
    assert pyc[:4] == importlib.util.MAGIC_NUMBER  # this test process is a 3.11 too (the project's floor)
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # PEP 552 unchecked-hash
    assert marshal.loads(pyc[16:]).co_filename == f"{SITE}/{HOOK_MODULE}.py"


def test_byte_code_for_another_minor_version_than_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An image of another Python minor gets that minor's pyc (magic number and cache tag), not the host's."""
    other = _other_minor_python()
    if other is None:
        pytest.skip("no interpreter of a minor version other than the host's on this machine")
    monkeypatch.setenv("REPRO_BUILD_BYTECODE_PYTHON", str(other))
    probe = subprocess.run(
        [
            str(other),
            "-c",
            "import importlib.util, sys; print(sys.version.split()[0]); print(importlib.util.MAGIC_NUMBER.hex())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    compiler = find_interpreter(probe[0])
    assert compiler.version == probe[0] and compiler.minor != HOST_MINOR
    site = f"/usr/local/lib/python{compiler.minor}/dist-packages"
    files = dict(app_files(Policy(("python",)), site, compiler, tmp_path))
    pyc = files[f"{site}/__pycache__/{HOOK_MODULE}.{compiler.cache_tag}.pyc"]
    assert pyc[:4].hex() == probe[1] != importlib.util.MAGIC_NUMBER.hex()
    # The same interpreter gives the same bytes again (fixed environment, one process per batch).
    again = dict(app_files(Policy(("python",)), site, compiler, tmp_path / "again"))
    assert again == files


def test_the_image_version_is_preferred_then_any_of_its_minor() -> None:
    exact = find_interpreter("3.11")
    assert exact.minor == "3.11" and exact.implementation == "cpython" and exact.cache_tag == "cpython-311"
    # A patch release uv does not know falls back to an interpreter of the same minor.
    fallback = find_interpreter("3.11.99")
    assert fallback.minor == "3.11"
    # The image's own patch release, when uv finds it, is what compiles.
    assert find_interpreter(exact.version).version == exact.version


def test_no_interpreter_of_the_images_minor_is_one_clear_error() -> None:
    with pytest.raises(ToolError) as err:
        find_interpreter("3.4.10")
    assert "no Python 3.4 interpreter to compile the image's byte-code" in err.value.message
    assert err.value.hint is not None and "uv python install 3.4.10" in err.value.hint
    assert "REPRO_BUILD_BYTECODE_PYTHON" in err.value.hint


def test_uv_python_of_the_wrong_minor_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_BUILD_BYTECODE_PYTHON", sys.executable)
    with pytest.raises(ToolError) as err:
        find_interpreter("3.9.2")
    found = f"needs CPython 3.9, but `REPRO_BUILD_BYTECODE_PYTHON` found cpython {sys.version.split()[0]}"
    assert found in err.value.message


def test_manifest_record_names_no_host_path() -> None:
    compiler = Interpreter(Path("/home/someone/.local/bin/python3.11"), "3.11.7", "cpython", "cpython-311")
    assert compiler.to_dict() == {"cache_tag": "cpython-311", "implementation": "cpython", "version": "3.11.7"}


def test_uv_python_set_by_a_tool_does_not_pick_the_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    """nox sets UV_PYTHON to its session's virtualenv in uv sessions; the image's X.Y.Z must still win."""
    from reprobuild.image import interpreter

    monkeypatch.delenv("REPRO_BUILD_BYTECODE_PYTHON", raising=False)
    monkeypatch.setenv("UV_PYTHON", sys.executable)
    exact = interpreter._find("3.11.2", None)
    assert interpreter.find_interpreter("3.11.2") == exact
