"""The project wheel for an image: built by the wheel step (canonical, from the committed tree).

Light on purpose: ``repro-build image`` imports this module, starts the wheel's build with
:class:`EarlyWheel`, and only then imports the rest of the image build (:mod:`reprobuild.image.build`).
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from reprobuild.config import Config
from reprobuild.epoch import Epoch

#: Builds or locates the project's wheel; returns (wheel path, the wheel step's record as a dict).
ProjectWheel = Callable[[Config, Path], tuple[Path, dict[str, Any]]]


def wheel_step(
    *,
    allow_dirty: bool = False,
    epoch: Epoch | None = None,
    offline: bool = False,
    cached_env: bool = False,
    on_waiting: Callable[[], None] | None = None,
) -> ProjectWheel:
    """A :data:`ProjectWheel` that runs ``repro-build wheel`` (wheel only) into the staging directory.

    ``epoch``: the source date (else the project's policy decides); ``offline``: the build backend comes
    from uv's cache only (``verify --offline``); ``cached_env``: the backend runs in the cached, verified
    environment of :mod:`reprobuild.wheel.backendenv` instead of a fresh one (``image``; never ``verify``);
    ``on_waiting``: see :func:`reprobuild.wheel.build.build_wheel`.
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
            on_waiting=on_waiting,
        )
        artifact = record.artifact("wheel")
        assert artifact is not None  # the wheel was asked for
        return dest / artifact.filename, record.to_dict()

    return build


class EarlyWheel:
    """The project wheel of ``repro-build image``, built on its own thread from the moment the command's
    arguments are checked, into a temporary directory; a :data:`ProjectWheel` that waits for it.

    Same step, same arguments, same bytes as a build started later (:func:`wheel_step` with the cached
    backend environment); only sooner. Every build of ``config`` (each target, each platform) takes this
    one wheel and a copy of its record: the wheel step's output depends only on the commit, the build
    lock and the epoch policy, none of which a target changes, so building it again would give the same
    bytes. A build of another config runs the step itself. A failed build raises its error in each build
    that asks for the wheel. Leaving the context waits for the thread and removes the directory.

    :meth:`settle` waits until the wheel's build only waits on other processes. Until then it does its
    own work in this process (git, the export, hashing the backend's environment again): that is many
    short system calls, each of which has to take the interpreter's lock back, and they crawl while
    another thread computes (imports the rest of the image build).
    """

    def __init__(self, config: Config, *, allow_dirty: bool) -> None:
        self._config = config
        self._waiting = threading.Event()
        self._step = wheel_step(allow_dirty=allow_dirty, cached_env=True, on_waiting=self._waiting.set)
        self._stack = contextlib.ExitStack()
        self._job: Future[tuple[Path, dict[str, Any]]] | None = None

    def __enter__(self) -> EarlyWheel:
        with self._stack as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="repro-build-wheel-")))
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="project-wheel"))
            self._job = pool.submit(self._build, tmp)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _build(self, tmp: Path) -> tuple[Path, dict[str, Any]]:
        try:
            return self._step(self._config, tmp)
        finally:
            self._waiting.set()

    def settle(self) -> None:
        """Return once the build waits on other processes only (or has ended)."""
        self._waiting.wait()

    def __call__(self, config: Config, dest: Path) -> tuple[Path, dict[str, Any]]:
        if config is not self._config or self._job is None:
            return self._step(config, dest)
        built, record = self._job.result()
        return built, copy.deepcopy(record)


__all__ = ["EarlyWheel", "ProjectWheel", "wheel_step"]
