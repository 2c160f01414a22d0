"""`repro-build init` turns a plain project into one whose `nox -s build` produces a verified image."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reprobuild.cli.main import main
from tests.foundation.helpers import git_commit

pytestmark = [pytest.mark.network, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def test_init_then_nox_build_verifies(tmp_path: Path) -> None:
    nox = shutil.which("nox") or str(Path(sys.executable).parent / "nox")
    if not Path(nox).exists():
        pytest.fail("nox is not installed (it is in the dev dependency groups)")
    project = tmp_path / "plain"
    (project / "src" / "plain").mkdir(parents=True)
    (project / "src" / "plain" / "__init__.py").write_text('def main() -> None:\n    print("plain")\n')
    (project / "pyproject.toml").write_text(
        '[project]\nname = "plain"\nversion = "0.2.0"\nrequires-python = ">=3.11"\ndependencies = ["six==1.17.0"]\n'
        '[project.scripts]\nplain = "plain:main"\n'
        '[build-system]\nrequires = ["hatchling==1.33.0"]\nbuild-backend = "hatchling.build"\n'
    )
    # No .gitignore: repro-build's own outputs (build/, dist/) and nox's venvs must not make the tree dirty.
    # The steps are the ones `init` prints and the tutorial shows: lock, commit, image, image again, nox.
    assert main(["init", "--project", str(project), "-q"]) == 0
    assert main(["lock", "--project", str(project), "-q"]) == 0
    git_commit(project)
    assert main(["image", "--project", str(project), "-q"]) == 0
    first = (project / "build" / "cpu" / "manifest.json").read_bytes()
    assert main(["image", "--project", str(project), "-q"]) == 0
    assert (project / "build" / "cpu" / "manifest.json").read_bytes() == first
    # The `reprobuild` distribution is not on the index this suite uses: the session installs this checkout.
    env = {**os.environ, "REPRO_BUILD_SPEC": str(REPO), "CI": ""}
    out = subprocess.run([nox, "-s", "build"], cwd=project, capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "verified: " in out.stdout + out.stderr
    # init proposed `smoke = ["plain", "--help"]`; the session ran it in the loaded image.
    assert "cpu: smoke test `plain --help`" in out.stdout + out.stderr
    assert "cpu: smoke test passed" in out.stdout + out.stderr
    assert (project / "build" / "cpu" / "manifest.json").is_file()
