"""One reading of an archive: ``index.json`` and ``manifest.json`` must describe the same image.

An OCI reader (the gate, ``inspect``, ``copy``, ``diff``) follows ``index.json``; ``docker load``
follows ``manifest.json``. An archive whose two views differ is refused by every command (exit 2,
both config digests named), so a gate cannot pass a file that deploys another image.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

from reprobuild.oci.archive import ArchiveDisagreementError, read_archive, write_archive
from reprobuild.oci.image import Image
from tests.manifest.schemacheck import sample
from tests.oci.helpers import small_image

CLI = (sys.executable, "-m", "reprobuild")


def _rewrite(src: Path, dst: Path, replace: dict[str, bytes], extra: dict[str, bytes]) -> None:
    """Copy the tar ``src`` to ``dst`` with members replaced and others added (as a hostile tool would)."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            data = replace.get(m.name)
            f = tin.extractfile(m) if m.isfile() else None
            payload = data if data is not None else (f.read() if f else None)
            if payload is not None:
                m.size = len(payload)
            tout.addfile(m, io.BytesIO(payload) if payload is not None else None)
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))


def _blobs(img: Image) -> dict[str, bytes]:
    out = {f"blobs/sha256/{layer.digest.hex}": layer.path.read_bytes() for layer in img.layers}
    out[f"blobs/sha256/{img.config_digest.hex}"] = img.config_bytes
    return out


def _docker_entry(img: Image, tags: list[str]) -> dict[str, object]:
    return {
        "Config": f"blobs/sha256/{img.config_digest.hex}",
        "Layers": [f"blobs/sha256/{layer.digest.hex}" for layer in img.layers],
        "RepoTags": tags,
    }


@pytest.fixture
def images(tmp_path: Path) -> tuple[Image, Image]:
    good = small_image(tmp_path / "good", b"the reviewed image\n")
    evil = small_image(tmp_path / "evil", b"something else\n")
    return good, evil


def _disagreeing(tmp_path: Path, good: Image, evil: Image) -> Path:
    honest = tmp_path / "honest.tar"
    write_archive(honest, good, repo_tags=["example.test/app:v1"])
    hostile = tmp_path / "hostile.tar"
    manifest = json.dumps([_docker_entry(evil, ["example.test/app:v1"])]).encode()
    extra = {k: v for k, v in _blobs(evil).items() if k not in _blobs(good)}
    _rewrite(honest, hostile, {"manifest.json": manifest}, extra)
    return hostile


def test_disagreeing_archive_is_refused_naming_both_configs(tmp_path: Path, images: tuple[Image, Image]) -> None:
    good, evil = images
    hostile = _disagreeing(tmp_path, good, evil)
    with pytest.raises(ArchiveDisagreementError) as e:
        read_archive(hostile, tmp_path / "staging")
    assert str(evil.config_digest) in e.value.message and str(good.config_digest) in e.value.message


def test_extra_layer_in_manifest_json_is_refused(tmp_path: Path, images: tuple[Image, Image]) -> None:
    good, evil = images
    honest = tmp_path / "honest.tar"
    write_archive(honest, good)
    entry = _docker_entry(good, [])
    entry["Layers"] = [f"blobs/sha256/{x.digest.hex}" for x in (*good.layers, evil.layers[0])]
    hostile = tmp_path / "hostile.tar"
    _rewrite(
        honest,
        hostile,
        {"manifest.json": json.dumps([entry]).encode()},
        {f"blobs/sha256/{evil.layers[0].digest.hex}": evil.layers[0].path.read_bytes()},
    )
    with pytest.raises(ArchiveDisagreementError, match="layers differ"):
        read_archive(hostile, tmp_path / "staging")


def test_tag_moved_to_another_image_is_refused(tmp_path: Path, images: tuple[Image, Image]) -> None:
    """Both images in both views, but manifest.json gives the reviewed tag to the other one."""
    good, evil = images
    from reprobuild.oci.layout import write_layout

    layout = tmp_path / "layout"
    write_layout(layout, good, tag="v1")
    write_layout(layout, evil, tag="other")
    honest = tmp_path / "honest.tar"
    with tarfile.open(honest, "w") as tf:
        tf.add(layout, arcname=".")
    manifest = json.dumps([_docker_entry(good, []), _docker_entry(evil, ["example.test/app:v1"])]).encode()
    hostile = tmp_path / "hostile.tar"
    _rewrite(honest, hostile, {}, {"manifest.json": manifest})
    with pytest.raises(ArchiveDisagreementError, match="as 'v1'"):
        read_archive(hostile, tmp_path / "staging", tag="v1")


def test_honest_archive_still_reads(tmp_path: Path, images: tuple[Image, Image]) -> None:
    good, _ = images
    honest = tmp_path / "honest.tar"
    write_archive(honest, good, repo_tags=["example.test/app:v1"])
    assert read_archive(honest, tmp_path / "staging").digest == good.digest


def _gate_manifest(tmp_path: Path, img: Image) -> Path:
    """A whole build manifest (the golden project's) whose outputs describe ``img``."""
    path = tmp_path / "manifest.json"
    data = sample()
    data["outputs"].update(
        manifest_digest=str(img.digest),
        config_digest=str(img.config_digest),
        image_id=str(img.config_digest),
        platform=f"{img.config['os']}/{img.config['architecture']}",
        layers=[
            {
                "digest": str(x.digest),
                "diff_id": str(x.diff_id),
                "size": x.size,
                "media_type": x.media_type,
                "holds": "app",
                "distributions": [],
            }
            for x in img.layers
        ],
    )
    path.write_text(json.dumps(data))
    return path


def test_gate_never_decompresses_layers(
    tmp_path: Path, images: tuple[Image, Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blobs are re-hashed, never inflated: a compression bomb in a gated archive costs nothing."""
    import reprobuild.oci.layer
    import reprobuild.oci.validate
    from reprobuild.manifest.gate import check_image
    from reprobuild.manifest.schema import read_manifest

    good, evil = images
    archive = tmp_path / "evil.tar"
    write_archive(archive, evil)

    def refuse(*args: object) -> object:
        raise AssertionError("the gate decompressed a layer")

    monkeypatch.setattr(reprobuild.oci.validate, "diff_id_of", refuse)
    monkeypatch.setattr(reprobuild.oci.layer, "diff_id_of", refuse)
    manifest = read_manifest(_gate_manifest(tmp_path, good))
    result = check_image(manifest, f"oci-archive:{archive}")
    assert not result.match and any(str(evil.digest) in p for p in result.problems)
    honest = tmp_path / "good.tar"
    write_archive(honest, good)
    assert check_image(manifest, f"oci-archive:{honest}").match
