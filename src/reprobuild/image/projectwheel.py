"""The project wheel for an image: built by the wheel step (canonical, from the committed tree)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprobuild.config import Config
from reprobuild.image.build import ProjectWheel


def wheel_step(*, allow_dirty: bool = False) -> ProjectWheel:
    """A :data:`ProjectWheel` that runs ``repro-build wheel`` (wheel only) into the staging directory."""

    def build(config: Config, dest: Path) -> tuple[Path, dict[str, Any]]:
        from reprobuild.wheel.build import build_wheel

        record = build_wheel(config, out_dir=dest, allow_dirty=allow_dirty, sdist=False)
        artifact = record.artifact("wheel")
        assert artifact is not None  # the wheel was asked for
        return dest / artifact.filename, record.to_dict()

    return build
