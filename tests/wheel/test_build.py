"""Real builds of the fixture projects through uv: double-build checks, the build record, bad input.

These need the package index (uv resolves and downloads the build backends) and a C compiler.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reprobuild.cli.main import main
from reprobuild.config import Config, load_config
from reprobuild.epoch import Epoch
from reprobuild.errors import ConfigError, StaleLockError, WheelError
from reprobuild.wheel.build import build_wheel
from reprobuild.wheel.record import parse_record, record_hash
from tests.wheel.conftest import Projects
from tests.wheel.fixtures import COMMIT_EPOCH, commit_all

pytestmark = [pytest.mark.network, pytest.mark.slow]

REPRODUCIBLE = ["hatch_pure", "setuptools_pure", "setuptools_cext", "flit_pure", "no_build_system"]


@pytest.mark.parametrize("name", REPRODUCIBLE)
def test_double_build_is_identical(projects: Projects, name: str) -> None:
    result = projects.check(name)
    assert [c.kind for c in result.comparisons] == ["sdist", "wheel"]
    assert result.identical, "\n".join(result.report_lines())
    # --report keeps both builds even when they agree; they must be byte-equal files.
    for c in result.comparisons:
        a = (projects.root / f"{name}-report" / "a" / c.a.filename).read_bytes()
        b = (projects.root / f"{name}-report" / "b" / c.b.filename).read_bytes()
        assert a == b
        assert "sha256:" + hashlib.sha256(a).hexdigest() == c.a.sha256


def test_c_extension_has_no_build_path(projects: Projects) -> None:
    """-ffile-prefix-map keeps the random build directory out of debug info and __FILE__."""
    result = projects.check("setuptools_cext")
    wheel = next(c for c in result.comparisons if c.kind == "wheel")
    data = (projects.root / "setuptools_cext-report" / "a" / wheel.a.filename).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        [so] = [n for n in z.namelist() if n.endswith(".so")]
        binary = z.read(so)
    assert b".debug_info" in binary  # the fixture compiles with -g, so a leak would show
    assert b"repro-build-check-" not in binary
    assert b"/tmp/" not in binary
    assert b"./unpack/cext-1.0.0" in binary  # the compile directory, relative to the mapped build root


def test_unreproducible_fixture_is_caught_and_explained(projects: Projects, capsys: pytest.CaptureFixture[str]) -> None:
    result = projects.check("unreproducible")
    assert not result.identical
    sdist, wheel = result.comparisons
    assert sdist.identical  # the hook only runs for the wheel
    assert not wheel.identical
    by_member = {d.member: d for d in wheel.differences}
    assert by_member["unreproducible/stamp.txt"].kind == "content"
    assert "built at" in by_member["unreproducible/stamp.txt"].detail
    assert "follows from" in by_member["unreproducible-1.0.0.dist-info/RECORD"].detail
    report = (projects.root / "unreproducible-report" / "report.txt").read_text()
    assert "unreproducible/stamp.txt: content" in report
    assert (projects.root / "unreproducible-report" / "b" / wheel.b.filename).is_file()
    err = result.error()
    assert err.exit_code == 1
    assert "unreproducible/stamp.txt" in err.message


def test_cli_check_exit_code_and_report(projects: Projects, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = projects.config("unreproducible")
    code = main(["wheel", "--check", "--wheel-only", "--project", str(config.root), "--report", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    assert code == 1
    assert "unreproducible/stamp.txt: content: text differs" in out
    assert "error: the double build is not reproducible" in err
    assert "hint:" in err
    # The report directory is output repro-build created: git ignores it (a .gitignore of `*`).
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [".gitignore", "a", "b", "report.txt"]


def test_build_writes_artifacts_and_record(
    projects: Projects, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = projects.config("setuptools_pure")
    out = tmp_path / "out"
    code = main(["wheel", "--project", str(config.root), "--out-dir", str(out)])
    assert code == 0
    stdout = capsys.readouterr().out.splitlines()
    record = json.loads((out / "setuptools_pure-1.0.0.build.json").read_text())
    assert len(stdout) == 2
    for line, artifact in zip(stdout, record["artifacts"], strict=True):
        path, sha = line.split(" ")
        assert Path(path) == out / artifact["filename"]
        data = Path(path).read_bytes()
        assert sha == artifact["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert artifact["size"] == len(data)
    assert record["source-date-epoch"] == {"seconds": COMMIT_EPOCH, "source": "git"}
    assert record["source"]["dirty"] is False and record["source"]["allow-dirty"] is False
    assert (
        record["source"]["commit"]
        == subprocess.check_output(["git", "-C", str(config.root), "rev-parse", "HEAD"], text=True).strip()
    )
    assert record["backend"]["entry-point"] == "setuptools.build_meta"
    assert record["backend"]["distribution"] == "setuptools"
    assert record["backend"]["version"] in (config.root / "repro-locks" / "build.txt").read_text()
    assert record["environment"]["SOURCE_DATE_EPOCH"] == str(COMMIT_EPOCH)
    assert record["environment"]["CPPFLAGS"] == "-ffile-prefix-map=<build-root>=."
    assert "CFLAGS" not in record["environment"]  # it would replace the interpreter's -O3 -DNDEBUG
    assert record["wheel-built-from"] == "sdist"
    # The same bytes as the double build made: build and check agree.
    check = projects.check("setuptools_pure")
    assert [a["sha256"] for a in record["artifacts"]] == [c.a.sha256 for c in check.comparisons]
    # RECORD regenerated and correct.
    with zipfile.ZipFile(out / record["artifacts"][1]["filename"]) as z:
        rows = parse_record(z.read("setuptools_pure-1.0.0.dist-info/RECORD"), "RECORD")
        assert z.namelist()[-1] == "setuptools_pure-1.0.0.dist-info/RECORD"
        for name, (h, _size) in rows.items():
            if h:
                assert h == record_hash(z.read(name))


def test_sdist_holds_only_tracked_files(fresh_project: Callable[..., Config]) -> None:
    """setuptools would package a stray file from the work tree; the git export keeps it out."""
    config = fresh_project("setuptools_pure")
    (config.root / "MANIFEST.in").write_text("include *.txt\n")
    commit_all(config.root, "include txt files")
    (config.root / "stray.txt").write_text("not committed\n")
    (config.root / ".gitignore").write_text((config.root / ".gitignore").read_text() + "stray.txt\n")
    commit_all(config.root, "ignore the stray file")
    record = build_wheel(load_config(config.root))
    sdist = config.root / "dist" / record.artifacts[0].filename
    with tarfile.open(sdist) as t:
        names = t.getnames()
    assert "setuptools_pure-1.0.0/pyproject.toml" in names
    assert not any(n.endswith("stray.txt") for n in names)


def test_dirty_tree_is_refused_then_allowed_and_recorded(fresh_project: Callable[..., Config]) -> None:
    config = fresh_project("hatch_pure")
    (config.root / "src" / "hatch_pure" / "new.py").write_text("NEW = 1\n")
    with pytest.raises(WheelError, match="uncommitted changes") as exc:
        build_wheel(config)
    assert "src/hatch_pure/new.py" in exc.value.message
    assert exc.value.hint is not None and "--allow-dirty" in exc.value.hint
    assert not (config.root / "dist").exists()  # nothing half-written
    record = build_wheel(config, allow_dirty=True)
    assert record.dirty is True and record.allow_dirty is True
    with zipfile.ZipFile(config.root / "dist" / record.artifacts[1].filename) as z:
        assert "hatch_pure/new.py" in z.namelist()  # what git status shows is what gets built
    saved = json.loads((config.root / "dist" / record.record_filename).read_text())
    assert saved["source"]["dirty"] is True


def test_not_a_git_repo_needs_an_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from reprobuild.lock.compile import lock_project
    from tests.wheel.fixtures import PACKAGES

    root = tmp_path / "plain"
    shutil.copytree(PACKAGES / "flit_pure", root)
    config = load_config(root)
    lock_project(config)
    with pytest.raises(ConfigError, match="not a git repository") as exc:
        build_wheel(config)
    assert exc.value.hint is not None and "SOURCE_DATE_EPOCH" in exc.value.hint
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    record = build_wheel(config)
    assert (record.epoch, record.epoch_source, record.vcs, record.dirty) == (1700000000, "env", None, None)
    with zipfile.ZipFile(root / "dist" / record.artifacts[1].filename) as z:
        assert {i.date_time for i in z.infolist()} == {(2023, 11, 14, 22, 13, 20)}
    # An explicit epoch argument works the same.
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    again = build_wheel(config, epoch=Epoch(1700000000, "config"))
    assert again.artifacts == record.artifacts


def test_backend_missing_from_build_lock(fresh_project: Callable[..., Config]) -> None:
    config = fresh_project("flit_pure")
    pyproject = config.root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('requires = ["flit_core>=3.4,<4"]', 'requires = ["flit_core>=3.4,<4", "tomli-w"]')
    )
    commit_all(config.root, "new build requirement")
    with pytest.raises(StaleLockError, match="tomli-w") as exc:
        build_wheel(load_config(config.root))
    assert exc.value.hint is not None and "repro-build lock" in exc.value.hint
    assert exc.value.exit_code == 1


def test_missing_build_lock(fresh_project: Callable[..., Config]) -> None:
    config = fresh_project("hatch_pure", lock=False)
    with pytest.raises(StaleLockError, match="never locked"):
        build_wheel(config)


def test_project_without_build_system_uses_pep517_default(projects: Projects) -> None:
    config = projects.config("no_build_system")
    assert not config.project.build_system_declared
    result = projects.check("no_build_system")
    assert result.identical
    assert "setuptools" in (config.root / "repro-locks" / "build.txt").read_text()


def test_wheel_step_falls_back_online_when_the_cache_lacks_the_backend(
    projects: Projects, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wheel step tries `--offline` first (the sdist step filled the cache); an empty cache must not fail it."""
    from reprobuild.wheel import build as build_mod

    config = projects.config("flit_pure")
    calls: list[bool] = []
    original = build_mod.HostRunner._run

    def spy(self: build_mod.HostRunner, *args: Any, offline: bool) -> Any:
        calls.append(offline)
        if offline:
            # An empty cache: what a wiped (or concurrently cleaned) uv cache looks like.
            step, source, out_dir, build_root, env = args
            args = (step, source, out_dir, build_root, {**env, "UV_CACHE_DIR": str(tmp_path / "empty-cache")})
        return original(self, *args, offline=offline)

    monkeypatch.setattr(build_mod.HostRunner, "_run", spy)
    record = build_wheel(config, out_dir=tmp_path / "out")
    assert calls == [False, True, False]  # sdist online; wheel offline (cache miss), then online
    assert record.artifacts == tuple(c.a for c in projects.check("flit_pure").comparisons)
    # The wheel alone (what `image` builds) tries the cache first too.
    calls.clear()
    alone = build_wheel(config, out_dir=tmp_path / "alone", sdist=False)
    assert calls == [True, False]
    assert alone.artifact("wheel") is not None


def test_cli_check_success_prints_both_hashes(projects: Projects, capsys: pytest.CaptureFixture[str]) -> None:
    config = projects.config("hatch_pure")
    assert main(["wheel", "--check", "--sdist-only", "--project", str(config.root)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines] == [["hatch_pure-1.0.0.tar.gz", "a"], ["hatch_pure-1.0.0.tar.gz", "b"]]
    assert lines[0].split()[2] == lines[1].split()[2]
    assert lines[0].split()[2] == next(
        c.a.sha256 for c in projects.check("hatch_pure").comparisons if c.kind == "sdist"
    )
    assert "reproducible" in err
    assert not (config.root / "dist").exists()  # --check writes nothing into the project
