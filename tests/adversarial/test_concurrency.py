"""Two builds of one project and one cache at once are safe, and a killed build's leftovers are cleaned;
two processes filling one blob store at once both get whole, verified blobs."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

from reprobuild.cachekey import write_sealed
from reprobuild.errors import BaseImageError
from reprobuild.image.base import verify_layers
from reprobuild.image.buildcache import LayerCache, layer_key
from reprobuild.image.depcache import DependencyCache
from reprobuild.image.plan import LayerGroup
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import default_config, new_image
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Platform
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


# ------------------------------------------------------------------ a corrupt blob replaced while it is checked

#: A corrupt blob this large (sparse: no disk written) takes a few tenths of a second to hash, long
#: enough for the other "process" below to see it open and rename a good copy over it.
_CORRUPT_SIZE = 256 << 20


def _corrupt(blob: Path) -> None:
    """Replace ``blob`` by a large sparse file of zeros (bytes that do not hash to its name)."""
    blob.unlink()
    with blob.open("wb") as f:
        f.truncate(_CORRUPT_SIZE)


def _replace_once_opened(blob: Path, good: bytes) -> tuple[threading.Thread, list[str]]:
    """What another process does meanwhile: as soon as this process has ``blob`` open (to check it),
    a good copy is written beside it and renamed onto its name, as a store commits a blob."""
    done: list[str] = []

    def opened() -> bool:
        for fd in Path("/proc/self/fd").iterdir():
            try:
                if fd.readlink() == blob:
                    return True
            except OSError:
                pass  # closed meanwhile
        return False

    def run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if opened():
                tmp = blob.with_name(".tmp-good")
                tmp.write_bytes(good)
                tmp.replace(blob)
                done.append("replaced")
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def _gzip_layer(tmp_path: Path) -> tuple[list[LayerEntry], Layer]:
    entries = [LayerEntry.file("/app/x.txt", b"hello\n")]
    return entries, write_layer(entries, epoch=0, compressor=Compressor.gzip(), store=BlobStore(tmp_path / "s"))


def test_a_good_blob_renamed_in_while_a_corrupt_one_is_checked_stays(tmp_path: Path) -> None:
    """The layer cache finds its blob corrupt while another build stores a good copy under the same name:
    only the corrupt file is removed, never the good one (which the other build is about to use)."""
    entries, layer = _gzip_layer(tmp_path)
    cache = LayerCache(tmp_path / "cache")
    key = layer_key(entries, epoch=0, compressor=Compressor.gzip().describe())
    cache.put(key, layer)
    blob = cache.store.path(layer.digest)
    good = blob.read_bytes()
    _corrupt(blob)
    thread, done = _replace_once_opened(blob, good)
    assert cache.get(key, entries=entries, epoch=0, media_type=layer.media_type) is None  # it saw the corrupt one
    thread.join()
    assert done == ["replaced"]
    assert blob.is_file() and blob.read_bytes() == good


def test_a_good_blob_renamed_in_while_a_dependency_entry_is_checked_stays(tmp_path: Path) -> None:
    """The same for the third-party layers' entry (image/depcache.py)."""
    _, layer = _gzip_layer(tmp_path)
    cache = DependencyCache(tmp_path / "cache")
    key = "ab" * 32
    cache.put(key, [LayerGroup("wheels", ("demo",), 6)], [layer], ["/app/x.txt"], {})
    assert cache.get(key) is not None
    blob = cache.store.path(layer.digest)
    good = blob.read_bytes()
    _corrupt(blob)
    thread, done = _replace_once_opened(blob, good)
    assert cache.get(key) is None
    thread.join()
    assert done == ["replaced"]
    assert blob.is_file() and blob.read_bytes() == good


def test_a_record_naming_a_good_blob_wrongly_leaves_the_blob(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An entry whose record lies about its blob's size is evicted, but the blob (it hashes to its name,
    so other entries and builds may be using it) stays in the store."""
    _, layer = _gzip_layer(tmp_path)
    cache = DependencyCache(tmp_path / "cache")
    key = "cd" * 32
    cache.put(key, [LayerGroup("wheels", ("demo",), 6)], [layer], ["/app/x.txt"], {})
    record = cache.index / f"{key}.json"
    payload = json.loads(record.read_text())["payload"]
    payload["groups"][0]["layer"]["size"] += 1
    write_sealed(record, payload)
    with caplog.at_level(logging.WARNING):
        assert cache.get(key) is None
    assert "is corrupt or not the" in caplog.text and not record.exists()
    assert cache.store.path(layer.digest).read_bytes() == layer.path.read_bytes()


def test_a_good_base_layer_renamed_in_while_a_corrupt_one_is_checked_stays(tmp_path: Path) -> None:
    """The same for the re-hash of every base layer before a build uses it (image/base.py)."""
    _, layer = _gzip_layer(tmp_path)
    image = new_image(default_config(Platform("linux", "amd64"), 0), [layer])
    good = layer.path.read_bytes()
    _corrupt(layer.path)
    thread, done = _replace_once_opened(layer.path, good)
    with pytest.raises(BaseImageError, match="is corrupt"):
        verify_layers(image, "base test")
    thread.join()
    assert done == ["replaced"]
    assert layer.path.is_file() and layer.path.read_bytes() == good
    verify_layers(image, "base test")  # the next build uses the good copy
