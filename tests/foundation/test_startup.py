"""Start-up: what ``repro-build image`` imports before its build starts, and the thread that imports the rest."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from reprobuild.cli import image as image_cli
from reprobuild.cli.preload import preload

#: Imported only where they are used (a download or a push, a lock being made, a base being built, a
#: manifest written, a wheel checked twice): none of them is needed before an image build starts, and
#: together they were about a third of its start-up.
NOT_BEFORE_THE_BUILD = {
    "requests",
    "urllib3",
    "http.client",
    "importlib.metadata",
    "tomlkit",
    "publicsuffixlist",
    "reprobuild.lock.compile",
    "reprobuild.base.debian.build",
    "reprobuild.base.debian.packages",
    "reprobuild.base.debian.release",
    "reprobuild.manifest.schema",
    "reprobuild.wheel.check",
}


def test_parsing_an_image_command_line_imports_nothing_the_build_starts_without() -> None:
    code = (
        "import json, sys\n"
        "from reprobuild.cli.main import build_parser\n"
        "build_parser('image').parse_args(['image', '--target', 'cpu', '-q', '--push', 'host/app:cpu'])\n"
        "import reprobuild.image.build\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert NOT_BEFORE_THE_BUILD & set(json.loads(out.stdout)) == set()


def test_every_module_the_image_command_preloads_exists() -> None:
    """A renamed module would leave the preload importing nothing, and its cost back after the build."""
    for name in image_cli._LOAD_MODULES + image_cli._PUSH_MODULES + image_cli._AFTER_BUILD_MODULES:
        assert importlib.util.find_spec(name) is not None, name


def test_preload_imports_on_its_own_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "preload_probe.py").write_text("import threading\nTHREAD = threading.current_thread().name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "preload_probe", raising=False)
    thread = preload(["preload_probe"])
    thread.join(timeout=30)
    probe = sys.modules["preload_probe"]
    assert probe.THREAD == thread.name != threading.current_thread().name
    monkeypatch.delitem(sys.modules, "preload_probe")


def test_a_failed_preload_is_reported_by_the_main_threads_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "preload_broken.py").write_text("import preload_no_such_module\n")
    (tmp_path / "preload_after.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    preload(["preload_broken", "preload_after"]).join(timeout=30)
    assert "preload_broken" not in sys.modules and "preload_after" not in sys.modules  # it stopped there
    assert capsys.readouterr() == ("", "")  # nothing printed from the thread
    with pytest.raises(ModuleNotFoundError, match="preload_no_such_module"):
        importlib.import_module("preload_broken")
