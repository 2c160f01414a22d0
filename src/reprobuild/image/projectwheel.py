"""The project wheel for an image: built by the wheel step (canonical, from the committed tree)."""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


class StartedWheel:
    """A :data:`ProjectWheel` whose build starts at once, on a thread, into a private temporary directory.

    ``repro-build image`` starts it before it imports the image machinery, so that the backend's processes
    run meanwhile. Called, it waits for that one build and copies the wheel into the directory asked for:
    every target (and platform) of the command installs the same wheel, as it would build the same bytes.
    A call with another ``config`` builds anew with ``build``. A failed build raises when called, where the
    image build would have raised it. :meth:`close` waits for the build and removes the directory.
    """

    def __init__(self, config: Config, build: ProjectWheel) -> None:
        self._config = config
        self._build = build
        self._dir = Path(tempfile.mkdtemp(prefix="repro-build-wheel-"))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="repro-build-wheel")
        self._future = self._pool.submit(build, config, self._dir / "dist")

    def __call__(self, config: Config, dest: Path) -> tuple[Path, dict[str, Any]]:
        if config is not self._config:
            return self._build(config, dest)
        built, record = self._future.result()
        dest.mkdir(parents=True, exist_ok=True)
        copy = dest / built.name
        shutil.copyfile(built, copy)
        return copy, record

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self._dir, ignore_errors=True)
