"""`image --smoke`: a target's smoke command runs in the loaded image, without a network, as the image's user;
an image whose console script fails at import fails it, naming the command, its exit code and its output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reprobuild.cli.main import main
from tests.foundation.helpers import git_commit
from tests.image.bookworm import bookworm_project
from tests.testbed import Engine

pytestmark = [pytest.mark.network, pytest.mark.slow]
CLI = (sys.executable, "-m", "reprobuild")
TAG = "repro-build-test-ecosys-smoke"


#: The ``ok`` target's smoke test: who it runs as and which network interfaces it sees.
OK_SMOKE = 'smoke = ["python3", "-c", "import os, socket; print(os.getuid(), [n for _, n in socket.if_nameindex()])"]'


def _pyproject(root: Path, broken: str = 'smoke = ["smoky", "--help"]') -> Path:
    """The project ``smoky``: its console script ``smoky``, a target ``broken`` (with the lines ``broken``)
    that runs it and a target ``ok``, both as the user 1000."""
    return bookworm_project(
        root,
        "smoky",
        scripts={"smoky": "smoky.cli:main"},
        tool='user = "1000:1000"',
        targets={"broken": broken, "ok": OK_SMOKE},
    )


def _project(root: Path) -> Path:
    _pyproject(root)
    # The console script imports a module the project never declared: the wheel installs, the image builds
    # bit for bit, and the program dies at start-up with ModuleNotFoundError.
    (root / "src" / "smoky" / "cli.py").write_text("import not_declared_anywhere\n\n\ndef main() -> None:\n    pass\n")
    assert main(["lock", "--project", str(root), "-q"]) == 0
    git_commit(root)
    return root


def _image(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "image", "--project", str(root), *args], capture_output=True, text=True, check=False)


def test_smoke(tmp_path: Path, engine: Engine) -> None:
    root = _project(tmp_path / "smoky")
    try:
        failed = _image(root, "--target", "broken", "--smoke", "--tag", f"{TAG}:broken", "--json")
        assert failed.returncode == 1, failed.stderr
        assert "target 'broken': the smoke test `smoky --help` exited 1:" in failed.stderr
        assert "ModuleNotFoundError: No module named 'not_declared_anywhere'" in failed.stderr
        assert failed.stdout == ""  # no JSON document for a failed command
        # The image itself was built, recorded and loaded under the tag asked for.
        assert (root / "build" / "broken" / "manifest.json").is_file()
        inspect = subprocess.run([engine.cli, "image", "inspect", f"{TAG}:broken"], capture_output=True, check=False)
        assert inspect.returncode == 0

        passed = _image(root, "--target", "ok", "--smoke", "--tag", f"{TAG}:{{target}}", "--json")
        assert passed.returncode == 0, passed.stderr
        doc = json.loads(passed.stdout)
        (record,) = doc["targets"]
        assert record["loaded"]["tag"] == f"{TAG}:ok"
        assert record["smoke"]["exit_code"] == 0
        # As the image's user, and with no network but the loopback interface.
        assert record["smoke"]["output"].strip() == "1000 ['lo']"
    finally:
        for target in ("broken", "ok"):
            subprocess.run([engine.cli, "rmi", "-f", f"{TAG}:{target}"], capture_output=True, check=False)


def test_smoke_needs_a_smoke_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _pyproject(tmp_path / "p", broken="")
    assert main(["image", "--project", str(root), "--target", "broken", "--smoke"]) == 2
    err = capsys.readouterr().err
    assert "--smoke: target 'broken' has no smoke test" in err and 'smoke = ["my-app", "--help"]' in err


def test_smoke_must_be_an_argv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _pyproject(tmp_path / "p", broken="smoke = []")
    assert main(["config", "--project", str(root)]) == 2
    assert "must be a non-empty list of non-empty strings" in capsys.readouterr().err
