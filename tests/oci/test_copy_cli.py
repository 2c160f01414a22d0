"""`repro-build copy`: layout -> registry -> archive -> engine with digests preserved; tools agree."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reprobuild.cli.main import main
from reprobuild.errors import ConfigError
from reprobuild.oci.digest import Digest
from reprobuild.oci.location import parse_location
from reprobuild.oci.validate import validate_layout
from tests.oci.conftest import DebianImage
from tests.testbed import Engine, Registry, unavailable


def _copy(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["--quiet", "copy", *args]) == 0
    return capsys.readouterr().out.strip()


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(name, f"`apt-get install -y {name}`")
    return path


@pytest.mark.engine
@pytest.mark.registry
@pytest.mark.slow
def test_layout_registry_archive_engine(
    debian_image: DebianImage, registry: Registry, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = debian_image.image
    digest = str(img.digest)
    ref = f"{registry.host}/copy/debian:bookworm"
    assert _copy(capsys, f"oci-layout:{debian_image.layout}:bookworm", ref) == f"{registry.host}/copy/debian@{digest}"
    skopeo = _tool("skopeo")
    info = json.loads(
        subprocess.run(
            [skopeo, "inspect", "--tls-verify=false", f"docker://{ref}"], capture_output=True, check=True
        ).stdout
    )
    assert info["Digest"] == digest
    archive = tmp_path / "deb.tar"
    assert _copy(capsys, f"docker://{ref}", f"oci-archive:{archive}") == f"oci-archive:{archive}@{digest}"
    info = json.loads(
        subprocess.run([skopeo, "inspect", f"oci-archive:{archive}"], capture_output=True, check=True).stdout
    )
    assert info["Digest"] == digest
    layout = tmp_path / "back"
    assert _copy(capsys, f"oci-archive:{archive}", f"oci-layout:{layout}:again") == f"oci-layout:{layout}@{digest}"
    validate_layout(layout)
    umoci = _tool("umoci")
    stat = json.loads(
        subprocess.run([umoci, "stat", "--image", f"{layout}:again", "--json"], capture_output=True, check=True).stdout
    )
    assert len(stat["history"]) == len(img.layers)
    out = _copy(capsys, f"oci-archive:{archive}", "docker-daemon:repro-build-test/copy:bookworm")
    assert out == f"docker-daemon:repro-build-test/copy:bookworm@{img.config_digest}"
    run = subprocess.run(
        [
            engine.cli,
            "run",
            "--rm",
            "--network",
            "none",
            "repro-build-test/copy:bookworm",
            "cat",
            "/etc/debian_version",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip().startswith("12")
    subprocess.run([engine.cli, "rmi", "repro-build-test/copy:bookworm"], capture_output=True, check=False)


def test_copy_errors_are_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["copy", f"oci-layout:{tmp_path}/missing", f"oci-layout:{tmp_path}/out"]) == 2
    err = capsys.readouterr().err
    assert "error: OCI layout" in err and "missing does not exist" in err
    assert not (tmp_path / "out").exists()
    assert main(["copy", "bogus-transport:x", f"oci-layout:{tmp_path}/out"]) == 2


def test_parse_locations() -> None:
    loc = parse_location("oci-layout:/a/b:v1")
    assert (loc.kind, str(loc.path), loc.tag) == ("oci-layout", "/a/b", "v1")
    d = "sha256:" + "a" * 64
    loc = parse_location(f"oci-layout:rel/dir@{d}")
    assert loc.digest == Digest.parse(d) and str(loc.path) == "rel/dir"
    assert parse_location("oci-archive:/x/y.tar").kind == "oci-archive"
    assert parse_location("docker-daemon:foo/bar").name == "foo/bar:latest"
    reg = parse_location("docker://127.0.0.1:5000/a/b:t")
    assert reg.reference is not None and reg.reference.registry == "127.0.0.1:5000" and reg.tag == "t"
    plain = parse_location(f"localhost:5000/a@{d}")
    assert plain.kind == "registry" and plain.digest == Digest.parse(d)
    with pytest.raises(ConfigError):
        parse_location("docker-daemon:foo@" + d)


def test_platform_mismatch_on_single_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reprobuild.oci.layout import write_layout
    from tests.oci.helpers import small_image

    write_layout(tmp_path / "src", small_image(tmp_path / "staging"), tag="v1")
    src = f"oci-layout:{tmp_path / 'src'}:v1"
    assert main(["--quiet", "copy", "--platform", "linux/arm64", src, f"oci-layout:{tmp_path / 'dst'}"]) == 2
    assert "single linux/amd64 image, not linux/arm64" in capsys.readouterr().err
    out = _copy(capsys, "--platform", "linux/amd64", src, f"oci-layout:{tmp_path / 'dst'}:v1")
    assert out.startswith(f"oci-layout:{tmp_path / 'dst'}@sha256:")
