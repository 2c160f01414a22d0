"""What the host and the clone cannot change: the lock's values on another host, and the source label."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from reprobuild import config as config_mod
from reprobuild.config import load_config
from reprobuild.image.build import build_image
from reprobuild.image.projectwheel import wheel_step
from reprobuild.lock import check_locks
from reprobuild.manifest.record import image_manifest
from reprobuild.manifest.schema import Label
from reprobuild.oci.image import Image
from tests.foundation.helpers import git_commit

pytestmark = pytest.mark.network  # the locked wheels come from the package index (then from the cache)

SOURCE = "org.opencontainers.image.source"


def _labels(image: Image) -> dict[str, str]:
    labels: dict[str, str] = image.config["config"].get("Labels", {})
    return labels


def test_the_image_takes_python_and_platform_from_the_lock_on_another_host(
    golden_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `python`/`platform` in the config, a Python 3.13 arm64 host builds the image the lock describes."""
    reference = build_image(load_config(golden_project), "cpu", project_wheel=wheel_step())
    pyproject = golden_project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('python = "3.11"\n', "").replace('platform = "linux/amd64"\n', ""))
    monkeypatch.setattr(config_mod, "default_python", lambda requires_python: "3.13")
    monkeypatch.setattr(config_mod, "host_arch", lambda: "arm64")
    config = load_config(golden_project)
    assert (config.python, config.target("cpu").platform) == ("3.11", "linux/amd64")
    assert check_locks(config) == []
    result = build_image(config, "cpu", project_wheel=wheel_step())
    assert result.image.config["architecture"] == "amd64"
    assert result.digest == reference.digest


def _clone(base: Path, dest: Path, origin: str | None) -> Path:
    subprocess.run(["git", "clone", "-q", str(base), str(dest)], check=True)
    if origin is not None:
        subprocess.run(["git", "-C", str(dest), "remote", "set-url", "origin", origin], check=True)
    return dest


def _committed(golden_project: Path, urls: str) -> Path:
    pyproject = golden_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("[project.scripts]", f"{urls}[project.scripts]"))
    (golden_project / ".gitignore").write_text("build/\ndist/\n")
    git_commit(golden_project)
    return golden_project


def test_clones_by_ssh_https_and_path_give_one_digest(golden_project: Path, tmp_path: Path) -> None:
    """With `[project.urls]`, how the repository was cloned reaches no byte of the image."""
    base = _committed(golden_project, '[project.urls]\nRepository = "https://git.example.org/org/golden.git"\n\n')
    forms = {
        "ssh": "git@git.example.org:org/golden.git",
        "https": "https://user:t0ken@git.example.org/org/golden.git/",
        "path": None,  # `origin` is the local path it was cloned from
    }
    digests = {}
    for name, origin in forms.items():
        clone = _clone(base, tmp_path / name / "golden", origin)
        config = load_config(clone)
        result = build_image(config, "cpu", project_wheel=wheel_step())
        assert _labels(result.image)[SOURCE] == "https://git.example.org/org/golden"
        assert image_manifest(config, result).source.label == Label(
            url="https://git.example.org/org/golden", origin="project.urls.Repository", note=None
        )
        digests[name] = result.digest
    assert len(set(digests.values())) == 1, digests


def test_without_project_urls_the_origin_is_normalised_and_a_path_is_never_a_label(
    golden_project: Path, tmp_path: Path
) -> None:
    base = _committed(golden_project, "")
    results = {}
    for name, origin in {
        "ssh": "ssh://git@git.example.org/org/golden.git",
        "https": "https://git.example.org/org/golden",
    }.items():
        clone = _clone(base, tmp_path / name / "golden", origin)
        results[name] = build_image(load_config(clone), "cpu", project_wheel=wheel_step())
    assert results["ssh"].digest == results["https"].digest
    assert _labels(results["ssh"].image)[SOURCE] == "https://git.example.org/org/golden"
    clone = _clone(base, tmp_path / "path" / "golden", None)
    config = load_config(clone)
    local = build_image(config, "cpu", project_wheel=wheel_step())
    assert SOURCE not in _labels(local.image)
    config_blob = json.dumps(local.image.config)
    assert str(tmp_path) not in config_blob and str(base) not in config_blob
    label = image_manifest(config, local).source.label
    assert label.url is None and label.note is not None and "local path" in label.note
