"""Shared bits of the template tests: the example project, golden files and a plain PEP 621 project."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello-ml"
#: Expected outputs of `repro-build dockerfile`, compared through the `golden` fixture (tests/golden.py).
GOLDEN = Path(__file__).parent / "golden"
#: The name a test gives a base it loaded into the engine (`--base-image`); part of the golden output.
LOADED_BASE = "repro-build/debian:bookworm"


def pinned_project(dest: Path) -> Path:
    """A project whose `slim` target uses the registry base pinned in repro-build's own Dockerfile.base."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Dockerfile.base", dest / "Dockerfile.base")
    (dest / "pyproject.toml").write_text(
        """[project]
name = "pinned-app"
version = "2.0.1"
requires-python = ">=3.11"
dependencies = []

[tool.repro-build]
python = "3.11"
entrypoint = ["python3", "-m", "pinned_app"]
cmd = ["--serve"]
workdir = "/srv"
user = "1000:1000"
env = { APP_MODE = "prod", QUOTED = "a \\"b\\" $HOME \\\\ c" }

[tool.repro-build.targets.slim]
base = "slim"
platform = "linux/amd64"
flags = ["python", "mkl", "jax"]
env = { APP_MODE = "slim" }
""",
        encoding="utf-8",
    )
    return dest


PLAIN_PYPROJECT = """\
# A plain project   with   odd spacing, and comments everywhere.
[project]
name    =   "Plain_App"      # mixed case on purpose
version = "1.2.3"
requires-python = ">=3.11,<3.13"
dependencies = [
  "packaging>=24",   # a small pure wheel
]

[project.scripts]
plain-app = "plain_app:main"
second = "plain_app:second"

[tool.ruff]
line-length=100
[build-system]
requires = ["hatchling==1.33.0"]
build-backend = "hatchling.build"
# trailing comment, no newline at the end"""


def plain_project(dest: Path) -> Path:
    """A PEP 621 project with no repro-build files (and a pyproject full of comments and odd spacing)."""
    (dest / "src" / "plain_app").mkdir(parents=True)
    (dest / "src" / "plain_app" / "__init__.py").write_text("def main() -> None:\n    print('hi')\n")
    (dest / "pyproject.toml").write_text(PLAIN_PYPROJECT, encoding="utf-8")
    return dest
