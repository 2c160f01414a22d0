"""Byte-code is compiled by several processes at once, each over a run of the files; a module's pyc does not
depend on how the files were cut into runs or how many ran at once."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reprobuild.image import bytecode
from reprobuild.image.bytecode import compile_distributions
from reprobuild.image.interpreter import find_interpreter
from reprobuild.image.pyenv import Distribution, InstalledFile

SITE = "/usr/local/lib/python3.11/dist-packages"


def sources(dest: Path) -> Distribution:
    """Real modules (the standard library's ``json`` and ``email`` packages) and one that does not compile."""
    compiler = find_interpreter("3.11")
    script = "import json, sysconfig; print(json.dumps(sysconfig.get_path('stdlib')))"
    out = subprocess.run([str(compiler.path), "-c", script], capture_output=True, text=True, check=True)
    stdlib = Path(json.loads(out.stdout))
    files: list[InstalledFile] = []
    for package in ("json", "email"):
        for src in sorted((stdlib / package).rglob("*.py")):
            rel = src.relative_to(stdlib).as_posix()
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            files.append(InstalledFile(f"{SITE}/{rel}", target, False))
    broken = dest / "broken.py"
    broken.write_text("def f(:\n")
    files.append(InstalledFile(f"{SITE}/broken.py", broken, False))
    return Distribution("sample", "1", None, tuple(sorted(files, key=lambda f: f.image_path)))


def compiled(tmp_path: Path, name: str) -> dict[str, bytes]:
    dist = sources(tmp_path / name)
    [result] = compile_distributions([dist], interpreter=find_interpreter("3.11"), site_packages=SITE)
    return {f.image_path: f.source.read_bytes() for f in result.files if f.image_path.endswith(".pyc")}


def test_runs_of_any_size_give_the_same_pyc_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = compiled(tmp_path, "one-process")
    assert len(whole) > 30 and f"{SITE}/__pycache__/broken.cpython-311.pyc" not in whole
    monkeypatch.setattr(bytecode, "COMPILE_RUN_BYTES", 1)  # a process per module
    assert compiled(tmp_path, "a-process-each") == whole
    monkeypatch.setattr(bytecode, "COMPILE_RUN_BYTES", 20_000)  # runs of a few modules, several at once
    monkeypatch.setattr(bytecode, "default_workers", lambda: 3)
    assert compiled(tmp_path, "runs") == whole


def test_runs_follow_the_sorted_paths_and_the_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bytecode, "COMPILE_RUN_BYTES", 10)
    jobs = [["/s/c", f"{SITE}/c.py"], ["/s/a", f"{SITE}/a.py"], ["/s/b", f"{SITE}/b.py"], ["/s/d", f"{SITE}/d.py"]]
    sizes = {"/s/a": 4, "/s/b": 6, "/s/c": 30, "/s/d": 1}
    assert [[j[0] for j in run] for run in bytecode._runs(jobs, sizes)] == [["/s/a", "/s/b"], ["/s/c"], ["/s/d"]]
