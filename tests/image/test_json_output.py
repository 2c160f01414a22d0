"""`--json` on every command that produces results: stdout is exactly one JSON document (logs, even with -v,
go to stderr), and it holds the digests, paths, sizes, timings and verdicts a CI job reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.foundation.helpers import git_commit
from tests.image.bookworm import bookworm_project

pytestmark = [pytest.mark.network, pytest.mark.slow]
CLI = (sys.executable, "-m", "reprobuild")


def _json(root: Path, *args: str, code: int = 0) -> dict[str, Any]:
    out = subprocess.run([*CLI, *args, "--json", "-v"], cwd=root, capture_output=True, text=True, check=False)
    assert out.returncode == code, out.stderr
    document = json.loads(out.stdout)  # the whole of stdout, nothing before or after it
    assert isinstance(document, dict)
    return document


def test_every_command_prints_one_json_document(tmp_path: Path) -> None:
    root = bookworm_project(tmp_path / "jsonic", "jsonic", dependencies=["six==1.17.0"])

    lock = _json(root, "lock")
    assert lock["command"] == "lock" and lock["check"] is False
    assert lock["locks"]["repro-locks/cpu.txt"]["pins"] == 1
    assert Path(lock["locks"]["repro-locks/build.txt"]["path"]).is_file()
    assert lock["seconds"] > 0
    git_commit(root)
    assert _json(root, "lock", "--check") == {
        "check": True,
        "command": "lock",
        "current": True,
        "seconds": pytest.approx(0, abs=30),
        "stale": [],
    }

    wheel = _json(root, "wheel", "--no-container")
    kinds = {a["kind"]: a for a in wheel["artifacts"]}
    assert set(kinds) == {"sdist", "wheel"}
    assert Path(kinds["wheel"]["path"]).stat().st_size == kinds["wheel"]["size"]
    check = _json(root, "wheel", "--check", "--no-container")
    assert check["identical"] is True and check["differences"] == []
    assert {c["a"]["sha256"] for c in check["comparisons"]} == {a["sha256"] for a in wheel["artifacts"]}

    (image,) = _json(root, "image")["targets"]
    digest = image["digest"]
    assert digest.startswith("sha256:") and image["platform"] == "linux/amd64"
    assert image["compressed_size"] == sum(layer["size"] for layer in image["layers"]) > 0
    assert Path(image["manifest"]).is_file() and image["loaded"] is None and image["smoke"] is None
    layout = f"oci-layout:{image['layout']}"

    inspect = _json(root, "inspect", layout)
    assert digest in json.dumps(inspect)
    assert _json(root, "diff", layout, f"oci-archive:{image['archive']}") is not None
    copy = _json(root, "copy", layout, f"oci-layout:{tmp_path / 'copied'}")
    assert copy["digest"] == digest and copy["pinned"].endswith(digest)
    gate = _json(root, "verify", image["manifest"], "--image", f"oci-layout:{tmp_path / 'copied'}")
    assert gate["match"] is True
    verify = _json(root, "verify", image["manifest"])
    assert verify["identical"] is True and verify["compared"] > 0
