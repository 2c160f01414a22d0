"""Two builds of one project and one cache at once are safe, and a killed build's leftovers are cleaned."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli import CLI


@pytest.mark.network
def test_concurrent_builds_and_leftovers(built_golden: Path) -> None:
    build = built_golden / "build"
    digest = json.loads((build / "cpu" / "manifest.json").read_text())["outputs"]["manifest_digest"]
    leftover = build / ".cpu-killedbuild"
    (leftover / "oci").mkdir(parents=True)
    (leftover / "oci" / "partial").write_bytes(b"\0" * 4096)
    procs = [
        subprocess.Popen([*CLI, "image", "--project", str(built_golden), "-q"], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=900)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert not leftover.exists()
    assert not list(build.glob(".cpu-*"))
    assert json.loads((build / "cpu" / "manifest.json").read_text())["outputs"]["manifest_digest"] == digest
