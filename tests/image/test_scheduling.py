"""The image's bytes do not depend on how its build was scheduled.

The project wheel builds while the third-party wheels are installed, and their layers are compressed
while the project wheel is installed (image/build.py): whichever finishes first, and however many
threads there are, the archive is byte for byte the same.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from reprobuild.config import Config, load_config
from reprobuild.errors import WheelError
from reprobuild.image import build as image_build
from reprobuild.image.build import ImageResult, build_image
from reprobuild.image.projectwheel import ProjectWheel, wheel_step
from reprobuild.oci.layer import write_layer

pytestmark = pytest.mark.network  # the locked wheels come from the package index (then from the cache)

DEPS = "third-party wheels"
PROJECT = "project golden-app"
#: How long one side waits for the other before the test gives up: the build did not run them at once.
PATIENCE = 300


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REPRO_BUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("REPRO_BUILD_CACHE_KEY", raising=False)
    return tmp_path / "cache"


def cold(root: Path, out: Path, project_wheel: ProjectWheel) -> tuple[ImageResult, bytes]:
    """A build that reuses no layer (every wheel installed, every layer compressed), and its archive."""
    result = build_image(load_config(root), "cpu", out_dir=out, use_cache=False, project_wheel=project_wheel)
    return result, result.archive.read_bytes()


class Layers:
    """``write_layer`` as the build calls it, with an event set when each layer is written and, for the
    layers named in ``wait``, a wait for another event first."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, wait: dict[str, threading.Event] | None = None) -> None:
        self.written = {DEPS: threading.Event(), PROJECT: threading.Event()}
        self._wait = wait or {}
        monkeypatch.setattr(image_build, "write_layer", self)

    def __call__(self, entries: Any, **kwargs: Any) -> Any:
        name = kwargs["description"]
        if name in self._wait:
            assert self._wait[name].wait(PATIENCE), f"layer {name!r} waited {PATIENCE} s for another step"
        layer = write_layer(entries, **kwargs)
        if name in self.written:
            self.written[name].set()
        return layer


def test_who_finishes_first_and_the_worker_count_change_no_byte(
    golden_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, archive = cold(golden_project, tmp_path / "reference", wheel_step())
    assert [r.holds for r in reference.layers][-3:] == [DEPS, PROJECT, "app"]

    # The project wheel is ready only once the third-party layer is written.
    layers = Layers(monkeypatch)
    step = wheel_step()

    def late_wheel(config: Config, dest: Path) -> tuple[Path, dict[str, Any]]:
        built = step(config, dest)
        assert layers.written[DEPS].wait(PATIENCE), "the third-party layer waited for the project wheel"
        return built

    slow, data = cold(golden_project, tmp_path / "late-wheel", late_wheel)
    assert (slow.digest, data) == (reference.digest, archive)

    # The third-party layer is written only once the project's is.
    project_done = threading.Event()
    layers = Layers(monkeypatch, wait={DEPS: project_done})
    layers.written[PROJECT] = project_done
    late, data = cold(golden_project, tmp_path / "late-dependencies", wheel_step())
    assert (late.digest, data) == (reference.digest, archive)

    # One background thread: each step in turn.
    monkeypatch.setattr(image_build, "write_layer", write_layer)
    monkeypatch.setattr(image_build, "BACKGROUND_WORKERS", 1)
    serial, data = cold(golden_project, tmp_path / "serial", wheel_step())
    assert (serial.digest, data) == (reference.digest, archive)
    assert serial.layers == reference.layers and serial.wheels == reference.wheels


def test_a_failed_project_wheel_fails_the_build_and_leaves_nothing(golden_project: Path, tmp_path: Path) -> None:
    def broken(config: Config, dest: Path) -> tuple[Path, dict[str, Any]]:
        raise WheelError("the backend failed", hint="fix the project")

    out = tmp_path / "out"
    with pytest.raises(WheelError, match="the backend failed"):
        build_image(load_config(golden_project), "cpu", out_dir=out, project_wheel=broken)
    assert not list(out.glob(".cpu-*"))
    assert not (out / "cpu").exists()
