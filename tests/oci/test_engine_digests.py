"""An image that went through the engine: `copy` says its manifest digest changed, `diff` says why.

The engine keeps layers uncompressed (``docker save`` gives them back as plain tars), so copying an
image out of it gives a new manifest digest with the same image ID and the same diff_ids.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from reprobuild.cli.copy import digest_change_warning
from reprobuild.cli.main import main
from reprobuild.manifest.semdiff import diff_images
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image
from reprobuild.oci.layout import write_layout
from reprobuild.oci.location import parse_location
from tests.oci.registry.test_progress_registry import _named_image
from tests.testbed import Engine, Registry

A, B, C = ("sha256:" + c * 64 for c in "abc")


def test_warning_names_both_digests_and_why() -> None:
    src, reg = parse_location("docker-daemon:app:cpu"), parse_location("127.0.0.1:5000/app:cpu")
    warning = digest_change_warning(src, reg, B, C, [])
    assert warning is not None
    assert f"manifest digest {B}" in warning and f"image ID {C}" in warning
    assert "uncompressed" in warning and "docker save" in warning
    known = digest_change_warning(src, reg, B, C, [A])
    assert known is not None and f"recorded for it ({A})" in known
    assert digest_change_warning(src, reg, A, C, [A]) is None  # an engine that kept the digest: no warning
    assert digest_change_warning(parse_location("oci-layout:x"), reg, B, C, []) is None
    assert digest_change_warning(src, parse_location("docker-daemon:other:cpu"), C, C, []) is None


def test_diff_calls_a_recompressed_base_layer_the_same_content(tmp_path: Path) -> None:
    """Layer 0 stored uncompressed (as `docker save` gives it) is not "base changed": its diff_id is the same."""
    gz = _named_image(tmp_path / "gz")
    plain = _recompressed(gz, tmp_path / "plain")
    assert plain.digest != gz.digest and plain.diff_ids == gz.diff_ids
    divergences = diff_images(gz, plain, layer_names=["debian", "numpy", "app"], base_layers=1)
    layers = [d for d in divergences if d.artifact.startswith("layer ")]
    assert [d.artifact for d in layers] == ["layer 0 (debian)", "layer 1 (numpy)", "layer 2 (app)"]
    assert {d.hazard for d in layers} == {"compression only"}
    for d, x, y in zip(layers, gz.layers, plain.layers, strict=True):
        assert d.details[0].startswith(f"recompressed, same content: diff_id {x.diff_id}; gzip {x.digest}")
        assert f"uncompressed {y.digest} ({y.size} bytes)" in d.details[0]


def test_diff_still_calls_a_changed_base_layer_base_changed(tmp_path: Path) -> None:
    from reprobuild.oci.image import append_layers, default_config, new_image
    from reprobuild.oci.layer import write_layer
    from reprobuild.oci.tarwriter import LayerEntry
    from reprobuild.oci.values import Platform

    gz = _named_image(tmp_path / "gz")
    other = write_layer(
        [LayerEntry.file("/etc/os-release", b"ID=ubuntu\n")],
        epoch=1_700_000_000,
        compressor=Compressor.gzip(),
        store=BlobStore(tmp_path / "o"),
    )
    changed = append_layers(
        new_image(default_config(Platform("linux", "amd64"), 1_700_000_000), []),
        other,
        *gz.layers[1:],
        history=list(gz.config["history"]),
    )
    divergences = diff_images(gz, changed, layer_names=["debian", "numpy", "app"], base_layers=1)
    assert divergences[0].artifact == "layer 0 (debian)" and divergences[0].hazard == "base changed"


def _recompressed(image: Image, staging: Path) -> Image:
    """``image`` with every layer stored uncompressed (same tars, same config)."""
    from reprobuild.oci.image import image_from_config_bytes
    from reprobuild.oci.layer import layer_from_tar

    store = BlobStore(staging)
    layers = []
    for i, layer in enumerate(image.layers):
        tar = staging / f"{i}.tar"
        staging.mkdir(parents=True, exist_ok=True)
        with layer.open_uncompressed() as f:
            tar.write_bytes(f.read())
        layers.append(layer_from_tar(tar, compressor=Compressor.none(), store=store))
    return image_from_config_bytes(image.config_bytes, layers)


@pytest.mark.engine
@pytest.mark.registry
def test_copy_out_of_the_engine_warns_and_diff_explains(
    engine: Engine, registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = _named_image(tmp_path / "staging")
    write_layout(tmp_path / "layout", img, tag="v1")
    name = f"repro-build-test/digests-{uuid.uuid4().hex[:8]}:v1"
    ref = f"{registry.host}/digests/{uuid.uuid4().hex[:8]}:v1"
    try:
        assert main(["-q", "copy", f"oci-layout:{tmp_path / 'layout'}:v1", f"docker-daemon:{name}"]) == 0
        capsys.readouterr()
        assert main(["copy", "--json", f"docker-daemon:{name}", ref]) == 0
        captured = capsys.readouterr()
        result = json.loads(captured.out)
        new = result["digest"]
        assert new != str(img.digest)
        [warning] = result["warnings"]
        assert f"manifest digest {new}" in warning and f"image ID {img.config_digest}" in warning
        assert f"warning: {warning}" in captured.err
        # A copy that keeps digests says nothing.
        assert main(["copy", "--json", f"oci-layout:{tmp_path / 'layout'}:v1", ref]) == 0
        assert json.loads(capsys.readouterr().out)["warnings"] == []

        # The same image from the layout and from the engine: every layer recompressed, none "base changed".
        code = main(["diff", "--json", f"oci-layout:{tmp_path / 'layout'}:v1", f"docker-daemon:{name}"])
        assert code == 1
        report = json.loads(capsys.readouterr().out)
        hazards = {d["artifact"]: d["hazard"] for d in report["divergences"]}
        assert hazards["layer 0 (/bin/sh -c #(nop) ADD file:4b0374bd in / )"] == "compression only"
        assert set(hazards.values()) == {"compression only"}
        assert all(d["details"][0].startswith("recompressed, same content") for d in report["divergences"])
    finally:
        subprocess.run([engine.cli, "rmi", name], capture_output=True, check=False)
