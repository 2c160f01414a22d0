"""`repro-locks/repro-build.txt` installs repro-build with `--require-hashes`, as the generated session and workflow do.

`reprobuild` is not on the index this suite uses, so its wheel is built from this checkout and offered through
`UV_FIND_LINKS` (as a local index would); its dependencies come from the configured index.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from reprobuild import __version__
from reprobuild.config import load_config
from reprobuild.distribution import DISTRIBUTION, Origin
from reprobuild.lock.toollock import TOOL_LOCK, lock_tool
from reprobuild.uvbin import find_uv
from tests.foundation.helpers import write_project
from tests.templates.helpers import ROOT

pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_tool_lock_pins_the_wheel_and_installs_with_require_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [find_uv(), "build", "--wheel", "--quiet", "--out-dir", str(wheels), "--build-constraint",
         str(ROOT / "repro-locks" / "build.txt"), "--require-hashes", str(ROOT)],
        check=True,
    )  # fmt: skip
    (wheel,) = wheels.glob(f"{DISTRIBUTION}-{__version__}-*.whl")
    monkeypatch.setenv("UV_FIND_LINKS", str(wheels))
    config = load_config(write_project(tmp_path / "p"))
    result = lock_tool(config, origin=Origin(True, "a package index"))
    assert result.path == config.locks_dir / TOOL_LOCK
    text = result.path.read_text()
    block = re.search(rf"^{DISTRIBUTION}=={re.escape(__version__)} \\\n((?:    --hash=.*\n)+)", text, re.MULTILINE)
    assert block, text
    assert f"--hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}" in block.group(1)
    # What the generated session does (`session.install("--require-hashes", "-r", "repro-locks/repro-build.txt")`).
    venv = tmp_path / "venv"
    subprocess.run([find_uv(), "venv", "--quiet", str(venv)], check=True)
    subprocess.run(
        [find_uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "--require-hashes",
         "-r", str(result.path)],
        check=True,
    )  # fmt: skip
    out = subprocess.run([venv / "bin" / "repro-build", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"repro-build {__version__}"
    # Installed so (no PEP 610 direct_url.json), that repro-build's own `lock` writes the tool lock.
    probe = "from reprobuild.distribution import installed_origin; print(installed_origin())"
    out = subprocess.run([venv / "bin" / "python", "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Origin(from_index=True, detail='a package index')"
