"""The OCI + docker-load archive: round trip, skopeo, the real engine, and hostile archives."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from reprobuild.errors import DigestMismatchError, OCIError
from reprobuild.oci import engine as engine_io
from reprobuild.oci.archive import ArchiveWriter, read_archive, write_archive
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image
from tests.oci.conftest import DebianImage
from tests.oci.helpers import small_image, tree_files
from tests.testbed import Engine, unavailable


def test_archive_round_trip_and_docker_manifest(tmp_path: Path) -> None:
    img = small_image(tmp_path / "staging")
    path = tmp_path / "img.tar"
    write_archive(path, img, repo_tags=["example.test/small:v1"])
    with tarfile.open(path) as tf:
        names = tf.getnames()
        manifest = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
        repositories = json.loads(tf.extractfile("repositories").read())  # type: ignore[union-attr]
        assert all((m.uid, m.gid, m.mtime, m.uname) == (0, 0, 0, "") for m in tf.getmembers())
    blobs = [f"blobs/sha256/{d.hex}" for d in (*(layer.digest for layer in img.layers), img.config_digest, img.digest)]
    assert names == ["blobs", "blobs/sha256", *blobs, "index.json", "manifest.json", "oci-layout", "repositories"]
    assert manifest == [
        {
            "Config": f"blobs/sha256/{img.config_digest.hex}",
            "Layers": [f"blobs/sha256/{layer.digest.hex}" for layer in img.layers],
            "RepoTags": ["example.test/small:v1"],
        }
    ]
    assert repositories == {"example.test/small": {"v1": img.config_digest.hex}}
    back = read_archive(path, tmp_path / "read")
    assert back.digest == img.digest
    # Same input, same archive bytes.
    again = tmp_path / "again.tar"
    write_archive(again, img, repo_tags=["example.test/small:v1"])
    assert again.read_bytes() == path.read_bytes()


def test_layers_added_early_give_the_bytes_of_one_write(tmp_path: Path) -> None:
    """A build copies its base's layers in while the layers above are built: the archive is the same."""
    img = small_image(tmp_path / "staging")
    whole = tmp_path / "whole.tar"
    write_archive(whole, img, repo_tags=["example.test/small:v1"])
    for early in (img.layers[:1], img.layers, img.layers[1:], img.layers[::-1], ()):
        path = tmp_path / "two-steps.tar"
        path.unlink(missing_ok=True)
        with ArchiveWriter(path) as writer:
            writer.add_layers(early)
            assert not path.exists()  # nothing in place before finish
            writer.finish(img, repo_tags=["example.test/small:v1"])
        assert path.read_bytes() == whole.read_bytes(), [layer.digest.hex[:8] for layer in early]
    assert len(img.layers) > 1  # the reversed order above is not the image's


def test_an_archive_left_unfinished_leaves_nothing(tmp_path: Path) -> None:
    img = small_image(tmp_path / "staging")
    path = tmp_path / "img.tar"
    with pytest.raises(RuntimeError), ArchiveWriter(path) as writer:
        writer.add_layers(img.layers)
        raise RuntimeError("the build failed above the base")
    assert list(tmp_path.glob("*.tar*")) == []
    corrupt = small_image(tmp_path / "corrupt")
    corrupt.layers[0].path.write_bytes(b"not the layer")
    with pytest.raises(OCIError, match="corrupt"), ArchiveWriter(path) as writer:
        writer.add_layers(corrupt.layers)
    assert list(tmp_path.glob("*.tar*")) == []


def test_zstd_image_is_refused_for_docker_load(tmp_path: Path) -> None:
    img = small_image(tmp_path / "staging", compressor=Compressor.zstd())
    with pytest.raises(OCIError, match="zstd") as e:
        write_archive(tmp_path / "x.tar", img, repo_tags=["a/b:c"])
    assert e.value.hint and "gzip" in e.value.hint
    assert not (tmp_path / "x.tar").exists()


def _hostile(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    path = tmp_path / "hostile.tar"
    with tarfile.open(path, "w") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ((_info("../evil"), b"x"), "escapes the archive root"),
        ((_info("/etc/evil"), b"x"), "escapes the archive root"),
        ((_info("blobs/sha256/" + "0" * 64, tarfile.SYMTYPE, "/etc/passwd"), None), "is a link"),
        ((_info("dev/null", tarfile.CHRTYPE), None), "device node"),
    ],
)
def test_hostile_archive_entries(tmp_path: Path, member: tuple[tarfile.TarInfo, bytes | None], message: str) -> None:
    path = _hostile(tmp_path, [(_info("oci-layout"), b'{"imageLayoutVersion":"1.0.0"}'), member])
    staging = tmp_path / "staging"
    before = tree_files(tmp_path)
    with pytest.raises(OCIError, match=message) as e:
        read_archive(path, staging)
    assert str(path) in e.value.message
    # Nothing was written outside the staging dir, and no blob entered it.
    assert tree_files(tmp_path) - before <= {"staging", "staging/blobs", "staging/blobs/sha256"}
    assert not (tmp_path.parent / "evil").exists()


def test_archive_blob_not_matching_its_name(tmp_path: Path) -> None:
    bad = "1" * 64
    path = _hostile(tmp_path, [(_info(f"blobs/sha256/{bad}"), b"not that content")])
    with pytest.raises(DigestMismatchError, match=bad):
        read_archive(path, tmp_path / "staging")
    assert not (tmp_path / "staging" / "blobs" / "sha256" / bad).exists()


@pytest.mark.parametrize("damage", ["flipped", "short", "long"])
def test_a_corrupt_layer_blob_yields_no_archive(tmp_path: Path, damage: str) -> None:
    """Each layer blob is checked while it is copied in: a wrong one leaves neither the archive nor a temp file."""
    img = small_image(tmp_path / "staging")
    blob = img.layers[0].path
    data = bytearray(blob.read_bytes())
    blob.chmod(0o644)
    if damage == "flipped":
        data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data[:-1]) if damage == "short" else bytes(data) + (b"x" if damage == "long" else b""))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OCIError, match=f"layer {img.layers[0].digest}: its blob .* has digest"):
        write_archive(out / "img.tar", img, repo_tags=["a/b:c"])
    assert list(out.iterdir()) == []


def test_truncated_archive(tmp_path: Path) -> None:
    img = small_image(tmp_path / "staging")
    path = tmp_path / "img.tar"
    write_archive(path, img, repo_tags=["a/b:c"])
    data = path.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(OCIError, match=r"cut\.tar"):
        read_archive(cut, tmp_path / "read")


def _engine_run(engine: Engine, *args: str) -> str:
    out = subprocess.run([engine.cli, *args], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.engine
@pytest.mark.slow
def test_engine_loads_archive_and_runs_it(debian_image: DebianImage, engine: Engine, tmp_path: Path) -> None:
    img = debian_image.image
    tag = "repro-build-test/oci-core:bookworm"
    path = tmp_path / "deb.tar"
    write_archive(path, img, repo_tags=[tag])
    # The same file is an OCI archive for skopeo, with the layout's manifest digest.
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        unavailable("skopeo", "`apt-get install -y skopeo`")
    info = json.loads(
        subprocess.run([skopeo, "inspect", f"oci-archive:{path}"], capture_output=True, check=True).stdout
    )
    assert info["Digest"] == str(img.digest)
    image_id = engine_io.load_archive(engine.client, path)
    assert image_id == str(img.config_digest)
    assert _engine_run(engine, "image", "inspect", "--format", "{{.Id}}", tag).strip() == str(img.config_digest)
    out = _engine_run(
        engine, "run", "--rm", "--network", "none", tag, "sh", "-c", ". /etc/os-release; echo $VERSION_CODENAME"
    )
    assert out.strip() == "bookworm"
    # Save back from the engine: config (image ID) and diff_ids survive; compressed digests cannot.
    saved = engine_io.save_image(engine.client, tag, tmp_path / "saved")
    assert isinstance(saved, Image)
    assert saved.config_digest == img.config_digest
    assert [layer.diff_id for layer in saved.layers] == [layer.diff_id for layer in img.layers]
    client: Any = engine.client
    client.images.remove(tag, force=True)
