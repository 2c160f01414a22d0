"""Registry calls in a CI log: each push, pull and manifest request is a named line with its true size.

Commands run through ``main`` with pytest's captured stderr, which is not a TTY (as in CI).
"""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path

import pytest

from reprobuild.cli.main import main
from reprobuild.cli.progress import LineProgress
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image, append_layers, default_config, describe_layer, new_image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.layout import write_layout
from reprobuild.oci.progress import human_size
from reprobuild.oci.registry import CredentialStore, RegistryClient
from reprobuild.oci.remote import pull, push
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Platform
from tests.oci.registry.servers import Exchange, Upstream, _ProxyHandler, proxy_to
from tests.oci.test_progress import _ends, _lines
from tests.testbed import Registry

pytestmark = pytest.mark.registry

EPOCH = 1_700_000_000
#: What :func:`reprobuild.oci.image.layer_labels` reads from the history of :func:`_named_image`.
LABELS = ["ADD file:4b0374bd in /", "numpy", "app"]


def _named_image(staging: Path) -> Image:
    """A base layer from another tool and two layers repro-build would write (names in the history)."""
    store = BlobStore(staging)
    gz = Compressor.gzip()
    base = write_layer([LayerEntry.file("/etc/os-release", b"ID=debian\n")], epoch=EPOCH, compressor=gz, store=store)
    numpy = write_layer(
        [LayerEntry.file("/site/numpy/core.so", os.urandom(300_000))], epoch=EPOCH, compressor=gz, store=store
    )
    app = write_layer([LayerEntry.file("/app/main.py", b"print(1)\n")], epoch=EPOCH, compressor=gz, store=store)
    image = new_image(default_config(Platform("linux", "amd64"), EPOCH), [])
    return append_layers(
        image,
        base,
        numpy,
        app,
        history=[
            {"created_by": "/bin/sh -c #(nop) ADD file:4b0374bd in / "},
            {"created_by": "repro-build: numpy"},
            {"created_by": "repro-build: app"},
        ],
    )


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Image]:
    img = _named_image(tmp_path / "staging")
    write_layout(tmp_path / "layout", img, tag="v1")
    return tmp_path / "layout", img


def test_push_and_pull_name_each_layer_with_its_size(
    registry: Registry, layout: tuple[Path, Image], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, img = layout
    repo = f"progress/{uuid.uuid4().hex[:8]}"
    ref = f"{registry.host}/{repo}:v1"
    names = ["layer 1/3 (ADD file:4b0374bd in /)", "layer 2/3 (numpy)", "layer 3/3 (app)"]
    for i, name in enumerate(names):
        assert describe_layer(i, 3, img.layers[i].digest, LABELS).startswith(name)

    assert main(["copy", f"oci-layout:{path}:v1", ref]) == 0
    captured = capsys.readouterr()
    err = _lines_of(captured.err)
    assert captured.out.strip() == f"{registry.host}/{repo}@{img.digest}"
    ends = _ends(err)
    for i, layer in enumerate(img.layers):
        what = f"pushing {names[i]} {layer.digest.algorithm}:{layer.digest.hex[:12]} to {registry.host}/{repo}"
        assert f"{what} ({human_size(layer.size)}) ...\n" in err
        assert ends[what] == layer.size  # the real blob size, not a bar's guess
    assert ends[f"pushing manifest {registry.host}/{repo}@{img.digest}"] == len(img.manifest_bytes)
    assert ends[f"tagging {registry.host}/{repo}:v1"] == len(img.manifest_bytes)
    # Every layer line names the layer, never only a digest.
    assert all("(" in line for line in err.splitlines() if line.startswith("pushing layer"))

    # A second push sends nothing and says why.
    assert main(["copy", f"oci-layout:{path}:v1", ref]) == 0
    err = _lines_of(capsys.readouterr().err)
    assert err.count("already in the registry") == len(img.layers)

    # Pull: the manifest request, then each layer by name, with its size.
    out = tmp_path / "pulled"
    assert main(["copy", ref, f"oci-layout:{out}:v1"]) == 0
    err = _lines_of(capsys.readouterr().err)
    ends = _ends(err)
    assert ends[f"fetching manifest {registry.host}/{repo}:v1"] == len(img.manifest_bytes)
    for i, layer in enumerate(img.layers):
        what = f"pulling {names[i]} {layer.digest.algorithm}:{layer.digest.hex[:12]} from {registry.host}/{repo}"
        assert ends[what] == layer.size


def _lines_of(err: str) -> str:
    assert "\r" not in err and "\x1b" not in err
    return err


def test_json_keeps_stdout_pure_and_quiet_silences(
    registry: Registry, layout: tuple[Path, Image], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, img = layout
    ref = f"{registry.host}/progress/{uuid.uuid4().hex[:8]}:v1"
    assert main(["copy", "--json", f"oci-layout:{path}:v1", ref]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["digest"] == str(img.digest)  # stdout is exactly one JSON document
    assert "pushing layer 2/3 (numpy)" in captured.err
    assert main(["-q", "copy", "--json", ref, f"oci-layout:{tmp_path / 'q'}:v1"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["digest"] == str(img.digest)
    assert captured.err == ""


def test_verify_image_shows_each_registry_request(
    registry: Registry, layout: tuple[Path, Image], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.adversarial.test_hostile_archive import _gate_manifest

    path, img = layout
    repo = f"progress/{uuid.uuid4().hex[:8]}"
    assert main(["-q", "copy", f"oci-layout:{path}:v1", f"{registry.host}/{repo}:v1"]) == 0
    capsys.readouterr()
    manifest = _gate_manifest(tmp_path, img)
    assert main(["verify", str(manifest), "--image", f"{registry.host}/{repo}:v1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("match:")
    err = _lines_of(captured.err)
    assert f"fetching manifest {registry.host}/{repo}:v1 ...\n" in err
    assert _ends(err)[f"fetching manifest {registry.host}/{repo}:v1"] == len(img.manifest_bytes)


def _client(host: str) -> RegistryClient:
    return RegistryClient(host, credentials=CredentialStore.anonymous(), retries=3, backoff=0.01)


def test_retried_transfers_are_counted_once(registry: Registry, layout: tuple[Path, Image], tmp_path: Path) -> None:
    """An upload that fails after sending every byte, and a download whose server ignores Range, are
    retried from zero: the end line still says the blob's size, not the bytes sent in all attempts."""
    _, img = layout
    numpy = img.layers[1]
    failed = {"put": False, "get": False}
    full: dict[str, bytes] = {}

    def hook(handler: _ProxyHandler, exchange: Exchange, upstream: Upstream) -> Upstream | str | None:
        if exchange.method == "PUT" and "/blobs/uploads/" in exchange.path and not failed["put"]:
            failed["put"] = True  # the registry stored it, but the client sees a 503 and starts over
            return Upstream(503, [("Retry-After", "0")], b"")
        if exchange.method == "GET" and str(numpy.digest) in exchange.path:
            if upstream.status == 200 and not failed["get"]:
                failed["get"] = True
                full["body"] = upstream.body
                handler.send_response(200)
                handler.send_header("Content-Length", str(len(upstream.body)))
                handler.end_headers()
                handler.wfile.write(upstream.body[: len(upstream.body) // 2])
                handler.wfile.flush()
                return "handled"
            if upstream.status == 206:  # ignore Range: everything again, from the start
                return Upstream(200, [("Content-Type", "application/octet-stream")], full["body"])
        return None

    repo = f"progress/{uuid.uuid4().hex[:8]}"
    with proxy_to(registry.host, hook) as proxy:
        stream = io.StringIO()
        push(_client(proxy.host), repo, img, tags=["v1"], progress=LineProgress(stream))
        ends = _ends(_lines(stream))
        assert failed["put"]
        assert {k: v for k, v in ends.items() if k.startswith("pushing layer")} == {
            f"pushing {describe_layer(i, 3, x.digest, LABELS)} to {proxy.host}/{repo}": x.size
            for i, x in enumerate(img.layers)
        }
        stream = io.StringIO()
        pull(_client(proxy.host), repo, "v1", BlobStore(tmp_path / "pulled"), progress=LineProgress(stream))
        ends = _ends(_lines(stream))
        assert failed["get"]
        what = f"pulling {describe_layer(1, 3, numpy.digest, LABELS)} from {proxy.host}/{repo}"
        assert ends[what] == numpy.size
