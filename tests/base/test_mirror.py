"""The base anywhere: a host whose apt sources lack the suite builds with `--mirror`, to the same bytes.

"No apt source" is this machine with `machine_sources` reporting nothing; "another mirror" is a
directory laid out like a Debian mirror (``pool/...``) holding the locked ``.deb`` files, read through a
``file://`` URL. The base lock's hashes decide the bytes, so any mirror gives the same digest.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from reprobuild.base.debian import sources
from reprobuild.base.debian.build import fetch_debs
from reprobuild.base.debian.lock import BaseInputs, make_lock, read_lock, write_lock
from reprobuild.base.debian.sources import NoAptSourceError
from reprobuild.cli.main import main
from tests.base.conftest import LockedBase
from tests.foundation.helpers import git_commit

pytestmark = [pytest.mark.network, pytest.mark.slow]


def _no_apt_sources(root: Path = Path("/")) -> list[sources.AptSource]:
    return []


@pytest.fixture(scope="module")
def other_mirror(locked_base: LockedBase, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A second mirror: the locked .deb files at their pool paths, as a file:// URL."""
    root = tmp_path_factory.mktemp("mirror")
    for deb, entry in fetch_debs(locked_base.lock, locked_base.cache):
        dest = root / deb.filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry, dest)
    return root.as_uri()


def test_the_hint_names_the_command_that_takes_the_mirror() -> None:
    error = NoAptSourceError("no apt source on this machine carries the suite `bookworm`")
    for command in ("image", "verify", "base build", "base lock"):
        assert f"pass `--mirror URL` to `repro-build {command}`" in str(error.for_command(command).hint)
    assert "`mirror` in `[tool.repro-build.debian]`" in str(error.for_command("lock").hint)
    assert "--mirror URL` to `repro-build lock`" not in str(error.for_command("lock").hint)


def test_base_build_with_a_mirror_on_a_host_without_apt_sources(
    locked_base: LockedBase, other_mirror: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["base", "build", "--lock", str(locked_base.path), "--project", str(tmp_path)]
    args += ["--suite", "bookworm", "--arch", "amd64"]
    assert main([*args, "--cache", str(tmp_path / "c1"), "--output", str(tmp_path / "apt")]) == 0
    from_apt = capsys.readouterr().out.strip()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sources, "machine_sources", _no_apt_sources)
        assert main([*args, "--cache", str(tmp_path / "c2"), "--output", str(tmp_path / "none")]) == 2
        err = capsys.readouterr().err
        assert "no apt source on this machine carries the suite `bookworm`" in err
        assert "pass `--mirror URL` to `repro-build base build`" in err
        assert not (tmp_path / "none" / "oci").exists()
        mirrored = ["--cache", str(tmp_path / "c2"), "--output", str(tmp_path / "mirror"), "--mirror", other_mirror]
        assert main([*args, *mirrored]) == 0
    # Another mirror, another cache: the lock's hashes decide the bytes.
    assert capsys.readouterr().out.strip() == from_apt
    # A warm cache needs no mirror at all, not even on a host without apt sources.
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sources, "machine_sources", _no_apt_sources)
        assert main([*args, "--cache", str(tmp_path / "c2"), "--output", str(tmp_path / "warm")]) == 0
    assert capsys.readouterr().out.strip() == from_apt


def test_a_configured_mirror_is_recorded_without_credentials(locked_base: LockedBase, tmp_path: Path) -> None:
    mirror = sources.default_mirror("bookworm")
    scheme, rest = mirror.split("://", 1)
    with_secret = f"{scheme}://reader:s3cret@{rest}"
    lock = make_lock(BaseInputs("bookworm", "amd64", with_secret), locked_base.cache)
    path = tmp_path / "base.json"
    write_lock(path, lock)
    text = path.read_text()
    assert "s3cret" not in text and "reader" not in text
    assert read_lock(path).mirror_used == mirror.rstrip("/")
    assert json.loads(text)["inputs"]["mirror"] == mirror.rstrip("/")


PYPROJECT = """\
[project]
name = "mirror-app"
version = "1.0.0"
requires-python = ">=3.11"

[build-system]
requires = ["hatchling==1.33.0"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/mirror_app"]

[tool.repro-build]
python = "3.11"
source-date-epoch = 1700000000
entrypoint = ["python3", "-c", "import mirror_app"]

[tool.repro-build.targets.cpu]
base = "debian:bookworm"
platform = "linux/amd64"
"""


def test_image_and_verify_take_a_mirror(
    other_mirror: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "app"
    (project / "src" / "mirror_app").mkdir(parents=True)
    (project / "src" / "mirror_app" / "__init__.py").write_text('"""An app."""\n')
    (project / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (project / ".gitignore").write_text("build/\ndist/\n")
    assert main(["lock", "--project", str(project), "-q"]) == 0  # the base from this machine's apt sources
    assert json.loads((project / "repro-locks" / "base-bookworm-amd64.json").read_text())["inputs"]["mirror"] is None
    git_commit(project)
    monkeypatch.setenv("REPRO_BUILD_CACHE", str(tmp_path / "c1"))
    assert main(["image", "--project", str(project), "-q"]) == 0
    from_apt = capsys.readouterr().out.strip()
    shutil.copy(project / "build" / "cpu" / "manifest.json", tmp_path / "manifest.json")

    monkeypatch.setattr(sources, "machine_sources", _no_apt_sources)
    monkeypatch.setenv("REPRO_BUILD_CACHE", str(tmp_path / "c2"))
    assert main(["image", "--project", str(project), "-q"]) == 2
    assert "pass `--mirror URL` to `repro-build image`" in capsys.readouterr().err
    assert main(["image", "--project", str(project), "-q", "--mirror", other_mirror]) == 0
    assert capsys.readouterr().out.strip() == from_apt

    monkeypatch.setenv("REPRO_BUILD_CACHE", str(tmp_path / "c3"))
    manifest = str(tmp_path / "manifest.json")
    assert main(["verify", manifest, "--repo", str(project), "-q"]) == 2
    assert "pass `--mirror URL` to `repro-build verify`" in capsys.readouterr().err
    assert main(["verify", manifest, "--repo", str(project), "-q", "--mirror", other_mirror]) == 0
    assert "artifacts identical" in capsys.readouterr().out
