"""Two builds of one project and one cache at once are safe, and a killed build's leftovers are cleaned;
two processes filling one blob store at once both get whole, verified blobs."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

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


# ------------------------------------------------------------------ two processes filling one blob store

_FILL = """
import hashlib, json, sys
from pathlib import Path
from reprobuild.base.debian.fetch import DebCache
from reprobuild.image.wheels import WheelCache, WheelPin

root, staging, base, files = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
debs, wheels = DebCache(root), WheelCache(root, staging=staging)
for name, (sha, size) in files.items():
    if name.endswith(".deb"):
        path = debs.get(sha, size, f"{base}/{name}", name)
    else:
        path = wheels.fetch(WheelPin("demo", "1.0", name, sha, size), f"{base}/{name}")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, name
"""


class _Meeting(http.server.SimpleHTTPRequestHandler):
    """Serves a directory slowly, and holds the first GET of each file until a second one arrives, so two
    clients are always writing the same blob at the same time."""

    arrived: ClassVar[dict[str, threading.Event]] = {}
    overlapped: ClassVar[set[str]] = set()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            event = self.arrived.get(self.path)
            if event is None:
                event = self.arrived[self.path] = threading.Event()
                first = True
            else:
                first = False
                self.overlapped.add(self.path)
                event.set()
        if first:
            event.wait(timeout=60)
        data = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for start in range(0, len(data), 16384):
            self.wfile.write(data[start : start + 16384])
            time.sleep(0.002)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_two_processes_fill_one_store_at_once(tmp_path: Path) -> None:
    """A .deb and two wheels fetched by two processes into one store, each file by both at the same moment:
    both succeed, every blob is whole and verified, and no temporary file is left."""
    served = tmp_path / "served"
    served.mkdir()
    files: dict[str, tuple[str, int]] = {}
    for i, name in enumerate(["hello_1.0_amd64.deb", "demo-1.0-py3-none-any.whl", "other-2.0-py3-none-any.whl"]):
        data = bytes([i]) * 7 + os.urandom(300_000)
        (served / name).write_bytes(data)
        files[name] = (hashlib.sha256(data).hexdigest(), len(data))
    handler = functools.partial(_Meeting, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    cache = tmp_path / "cache"
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _FILL, str(cache), str(tmp_path / f"stage{i}"), base, json.dumps(files)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        errors = [p.communicate(timeout=300)[1] for p in procs]
    finally:
        server.shutdown()
        server.server_close()
    assert [p.returncode for p in procs] == [0, 0], errors
    assert _Meeting.overlapped == {f"/{name}" for name in files}  # every file was written by both at once
    store = cache / "blobs" / "sha256"
    assert sorted(p.name for p in store.iterdir()) == sorted(sha for sha, _ in files.values())  # no temp file
    for sha, size in files.values():
        assert hashlib.sha256((store / sha).read_bytes()).hexdigest() == sha and (store / sha).stat().st_size == size
