"""`repro-build init`: config added with every other byte kept, files written only when safe, --force."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomlkit

from reprobuild.cli.main import main
from reprobuild.config import load_config
from reprobuild.dockerfile_base import parse_dockerfile_base
from reprobuild.init import NOXFILE, WORKFLOW, InitConflictError, init_project
from reprobuild.lock.toollock import TOOL_LOCK
from tests.templates.helpers import PLAIN_PYPROJECT, plain_project

ALL = ["pyproject.toml", "Dockerfile.base", NOXFILE, WORKFLOW]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_init_plain_project(tmp_path: Path) -> None:
    root = plain_project(tmp_path)
    result = init_project(root)
    assert [f.path for f in result.written] == ALL
    assert result.advice == ()
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    # Every byte of the original stays where it was; the table is appended after it.
    assert text.startswith(PLAIN_PYPROJECT + "\n")
    assert "# mixed case on purpose" in text and "line-length=100" in text
    config = load_config(root)
    assert config.explicit and list(config.targets) == ["cpu"]
    assert config.python == "3.11"  # requires-python >=3.11,<3.13 allows the running 3.11 or picks 3.11
    assert config.entrypoint == ("plain-app",)  # the first [project.scripts] entry
    assert config.target("cpu").smoke == ("plain-app", "--help")  # the smoke test init proposes
    assert config.target("cpu").base.kind == "debian"
    # Dockerfile.base has only commented example stages: nothing is pinned by a made-up digest.
    dockerfile_base = root / "Dockerfile.base"
    assert parse_dockerfile_base(dockerfile_base).stages == ()
    assert "sha256:" not in dockerfile_base.read_text().replace("@sha256:<digest>", "")
    assert "repro-build lock --resolve-bases" in dockerfile_base.read_text()
    noxfile = (root / NOXFILE).read_text()
    compile(noxfile, NOXFILE, "exec")
    assert "def build(session: nox.Session)" in noxfile
    workflow = (root / WORKFLOW).read_text()
    for needle in ("repro-build lock --check", "nox -s build", "--push", "verify build/cpu/manifest.json --image"):
        assert needle in workflow
    assert "${{ vars.REGISTRY }}" in workflow and "needs: [push, gate]" in workflow
    _installs_only_hash_pinned(noxfile, workflow)


def _installs_only_hash_pinned(noxfile: str, workflow: str) -> None:
    """repro-build is installed from the hashed tool lock (or REPRO_BUILD_SPEC), never by a bare name."""
    lock = f"repro-locks/{TOOL_LOCK}"
    assert f'session.install("--require-hashes", "-r", "{lock}")' in noxfile
    assert "session.install(spec)" in noxfile and 'os.environ.get("REPRO_BUILD_SPEC")' in noxfile
    installs = [line.strip() for line in workflow.splitlines() if "pip install" in line]
    # build, push and gate each install repro-build from the lock; nox is a separate tool.
    assert installs.count(f"- run: pip install --require-hashes -r {lock}") == 3
    assert set(installs) == {f"- run: pip install --require-hashes -r {lock}", "- run: pip install nox"}
    # The gate job has no checkout: the lock travels with the manifests it downloads.
    gate = workflow[workflow.index("\n  gate:") :]
    assert gate.index("download-artifact") < gate.index(f"pip install --require-hashes -r {lock}")
    assert f"            {lock}\n" in workflow
    for text in (noxfile, workflow):
        assert re.search(r"(repro-build|reprobuild)==", text) is None


def test_init_twice_refuses_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = plain_project(tmp_path)
    init_project(root)
    before = _snapshot(root)
    with pytest.raises(InitConflictError) as info:
        init_project(root)
    assert "[tool.repro-build]" in info.value.message and "Dockerfile.base" in info.value.message
    assert info.value.exit_code == 2
    assert main(["init", "--project", str(root)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "error: " in captured.err and "hint: pass `--force`" in captured.err
    assert _snapshot(root) == before


def test_one_existing_file_blocks_everything(tmp_path: Path) -> None:
    root = plain_project(tmp_path)
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / WORKFLOW).write_text("name: mine\n")
    before = _snapshot(root)
    with pytest.raises(InitConflictError, match=r"repro-build\.yml"):
        init_project(root)
    assert _snapshot(root) == before  # pyproject.toml untouched, no Dockerfile.base, no noxfile


def test_existing_noxfile_is_left_alone_with_advice(tmp_path: Path) -> None:
    root = plain_project(tmp_path)
    (root / NOXFILE).write_text("import nox\n")
    result = init_project(root)
    assert NOXFILE not in [f.path for f in result.written]
    assert (root / NOXFILE).read_text() == "import nox\n"
    assert len(result.advice) == 1 and "def build(session" in result.advice[0]


def test_force_overwrites_and_is_idempotent(tmp_path: Path) -> None:
    root = plain_project(tmp_path)
    init_project(root)
    first = _snapshot(root)
    (root / "Dockerfile.base").write_text("# mine\n")
    (root / NOXFILE).write_text("import nox\n")
    result = init_project(root, force=True)
    assert {f.path: f.action for f in result.written} == {
        "pyproject.toml": "update",
        "Dockerfile.base": "overwrite",
        NOXFILE: "overwrite",
        WORKFLOW: "overwrite",
    }
    assert _snapshot(root) == first  # the old table was replaced, not duplicated


def test_force_replaces_an_edited_table_and_keeps_the_rest(tmp_path: Path) -> None:
    root = plain_project(tmp_path)
    init_project(root)
    path = root / "pyproject.toml"
    path.write_text(path.read_text() + '\n[tool.repro-build.targets.gpu]\nbase = "debian:bookworm"\n')
    init_project(root, force=True)
    data = tomlkit.parse(path.read_text()).unwrap()
    assert list(data["tool"]["repro-build"]["targets"]) == ["cpu"]
    assert data["tool"]["ruff"] == {"line-length": 100}
    assert path.read_text().startswith(PLAIN_PYPROJECT + "\n")


def test_cli_prints_paths_as_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = plain_project(tmp_path)
    assert main(["init", "--project", str(root)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ALL
    assert "created Dockerfile.base" in captured.err and "updated pyproject.toml" in captured.err


def test_not_a_pep621_project(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 1\n")
    with pytest.raises(Exception, match=r"no `\[project\]` table"):
        init_project(tmp_path)
    assert not (tmp_path / "Dockerfile.base").exists()
    with pytest.raises(Exception, match=r"no pyproject\.toml"):
        init_project(tmp_path / "missing")


def test_no_scripts_means_no_entrypoint(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "lib"\nversion = "1"\nrequires-python = ">=3.12"\n')
    init_project(tmp_path)
    config = load_config(tmp_path)
    assert config.entrypoint == ()
    assert config.target("cpu").smoke == ()  # no script to run: the smoke line stays a comment
    assert config.python == "3.12"


@pytest.mark.network
@pytest.mark.slow
def test_lock_works_after_init(tmp_path: Path) -> None:
    from reprobuild.lock import check_locks
    from reprobuild.lock.compile import lock_project

    root = plain_project(tmp_path)
    init_project(root)
    config = load_config(root)
    lock_project(config)
    assert "packaging==" in (root / "repro-locks" / "cpu.txt").read_text()
    assert check_locks(load_config(root)) == []
