"""The project wheel for an image: built by the wheel step (canonical, from the committed tree)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprobuild.config import Config
from reprobuild.epoch import Epoch
from reprobuild.image.build import ProjectWheel


def wheel_step(
    *, allow_dirty: bool = False, epoch: Epoch | None = None, offline: bool = False, cached_env: bool = False
) -> ProjectWheel:
    """A :data:`ProjectWheel` that runs ``repro-build wheel`` (wheel only) into the staging directory.

    ``epoch``: the source date (else the project's policy decides); ``offline``: the build backend comes
    from uv's cache only (``verify --offline``); ``cached_env``: the backend runs in the cached, verified
    environment of :mod:`reprobuild.wheel.backendenv` instead of a fresh one (``image``; never ``verify``).
    """

    def build(config: Config, dest: Path) -> tuple[Path, dict[str, Any]]:
        from reprobuild.wheel.build import build_wheel

        record = build_wheel(
            config,
            out_dir=dest,
            allow_dirty=allow_dirty,
            epoch=epoch,
            offline=offline,
            sdist=False,
            cached_env=cached_env,
        )
        artifact = record.artifact("wheel")
        assert artifact is not None  # the wheel was asked for
        return dest / artifact.filename, record.to_dict()

    return build
