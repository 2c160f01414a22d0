"""The docs say what the program does: the gate job they show is the one `init` writes, and each exit code
the CLI reference and the how-tos state is the one the command returns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reprobuild.cli.main import main
from reprobuild.init import WORKFLOW, plan_init
from reprobuild.oci.layout import write_layout
from tests.adversarial.test_hostile_archive import _gate_manifest
from tests.foundation.helpers import git_commit
from tests.oci.helpers import small_image

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: The tutorial's project, as `docs/tutorial.md` creates it (the gate job shown is "as generated for the
#: tutorial's project").
TUTORIAL_PYPROJECT = """\
[project]
name = "my-app"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = []

[project.scripts]
my-app = "my_app:main"
"""


def _gate_job(workflow: str) -> str:
    """The workflow's `gate:` job and the head of `deploy:` (what the how-to shows)."""
    start = workflow.index("  gate:\n")
    end = workflow.index("    needs: [push, gate]\n", start) + len("    needs: [push, gate]\n")
    return workflow[start:end]


def test_the_gate_job_in_the_docs_is_what_init_generates(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(TUTORIAL_PYPROJECT)
    (tmp_path / "src" / "my_app").mkdir(parents=True)
    (tmp_path / "src" / "my_app" / "__init__.py").write_text("def main() -> None:\n    pass\n")
    planned, _ = plan_init(tmp_path)
    workflow = next(f.text for f in planned if f.path == WORKFLOW)
    howto = (DOCS / "how-to" / "verify-before-deploy.md").read_text()
    shown = re.findall(r"```yaml\n(.*?)```", howto, re.S)
    assert len(shown) == 1, "verify-before-deploy.md shows one YAML block, the gate job"
    # The docs elide the deployment's steps with `...`; everything before it is the generated text.
    assert shown[0] == _gate_job(workflow) + "    ...\n"


def _reference() -> str:
    """The CLI reference and the gate how-to, with line breaks and runs of spaces as single spaces."""
    text = (DOCS / "reference" / "cli.md").read_text() + (DOCS / "how-to" / "verify-before-deploy.md").read_text()
    return " ".join(text.split())


@pytest.fixture
def images(tmp_path: Path) -> tuple[str, str, Path]:
    """Two different layouts (A and B) and a build manifest describing A."""
    a, b = tmp_path / "a", tmp_path / "b"
    image_a = small_image(tmp_path / "sa")
    write_layout(a, image_a, tag="v1")
    write_layout(b, small_image(tmp_path / "sb", text=b"other\n"), tag="v1")
    return f"oci-layout:{a}:v1", f"oci-layout:{b}:v1", _gate_manifest(tmp_path, image_a)


def test_gate_exit_codes(images: tuple[str, str, Path], tmp_path: Path) -> None:
    a, b, manifest = images
    assert "Exit 0 match, 1 mismatch, 2 error." in _reference()
    assert main(["-q", "verify", str(manifest), "--image", a]) == 0
    assert main(["-q", "verify", str(manifest), "--image", b]) == 1
    # "An `oci-layout:` or `oci-archive:` path that does not exist is an error (exit 2), not a mismatch"
    assert "path that does not exist is an error (exit 2), not a mismatch" in _reference()
    assert main(["-q", "verify", str(manifest), "--image", f"oci-layout:{tmp_path / 'missing'}"]) == 2
    assert main(["-q", "verify", str(manifest), "--image", f"oci-archive:{tmp_path / 'missing.tar'}"]) == 2


def test_diff_inspect_copy_exit_codes(images: tuple[str, str, Path], tmp_path: Path) -> None:
    a, b, _ = images
    assert "Exit 0 identical, 1 different, 2 error" in _reference()
    assert main(["-q", "diff", a, a]) == 0
    assert main(["-q", "diff", a, b]) == 1
    missing = f"oci-layout:{tmp_path / 'missing'}"
    assert main(["-q", "diff", a, missing]) == 2
    # "`2` | an error: … a missing file …"
    assert main(["-q", "inspect", missing]) == 2
    assert main(["-q", "copy", missing, f"oci-layout:{tmp_path / 'out'}"]) == 2
    assert not (tmp_path / "out").exists()
    # "A mistyped command is an error (exit 2)"
    assert "A mistyped command is an error (exit 2)" in _reference()
    assert main(["imgae"]) == 2


def test_stale_lock_exit_codes(tmp_path: Path) -> None:
    """`lock --check` and `image` with a lock that was never made: exit 1, as the reference says."""
    root = tmp_path / "p"
    (root / "src" / "p").mkdir(parents=True)
    (root / "src" / "p" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n\n'
        '[tool.repro-build.targets.cpu]\nbase = "debian:bookworm"\n'
    )
    git_commit(root)
    text = _reference()
    assert "A missing or stale lock stops the build with exit 1" in text
    assert "exits 1 naming what changed" in text
    assert main(["-q", "lock", "--check", "--project", str(root)]) == 1
    assert main(["-q", "image", "--no-project", "--project", str(root)]) == 1


def test_readme_opens_with_the_two_commands_ci_runs() -> None:
    """README.md opens with exactly the two one-line commands a user pastes, prompt-free, and `.ci/run` finds
    the test command by the same line (`grep -m1 -E '^pip install nox && nox -s tests'`)."""
    root = DOCS.parent
    readme = (root / "README.md").read_text()
    first_block = re.search(r"```[a-z]*\n(.*?)```", readme, re.S)
    assert first_block is not None and readme.index(first_block.group(0)) < readme.index("\n\n", 20)
    assert first_block.group(1).splitlines() == ["pip install nox && nox -s build", "pip install nox && nox -s tests"]
    ci = (root / ".ci" / "run").read_text()
    assert "grep -m1 -E '^pip install nox && nox -s tests' README.md" in ci
