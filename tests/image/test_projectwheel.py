"""``image``'s early project wheel: started at once, taken by every build of the config, waited for.

The step itself is the wheel step (tests/wheel); here it is a stand-in that records its calls, so that
what :class:`EarlyWheel` adds is tested alone: one build for every target, a copy of the record for each,
the step's own error in every build that asks, :meth:`EarlyWheel.settle` returning only once the build
waits on other processes, and nothing left behind.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from reprobuild.config import Config, load_config
from reprobuild.errors import WheelError
from reprobuild.image import projectwheel
from reprobuild.image.projectwheel import EarlyWheel

#: How long a test waits for the other thread before it fails.
PATIENCE = 30


class Step:
    """A stand-in for the wheel step: writes a wheel into the directory it is given, or fails."""

    def __init__(self, *, fail: bool = False, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[Config, Path]] = []
        self.fail = fail
        self.gate = gate
        self.on_waiting: Any = None
        self.reached = threading.Event()

    def factory(self, **kwargs: Any) -> Any:
        self.on_waiting = kwargs["on_waiting"]
        assert kwargs["cached_env"] is True
        return self

    def __call__(self, config: Config, dest: Path) -> tuple[Path, dict[str, Any]]:
        self.calls.append((config, dest))
        self.reached.set()
        if self.gate is not None:
            assert self.gate.wait(PATIENCE)
        if self.fail:
            raise WheelError("building the wheel failed: the backend said no")
        self.on_waiting()
        dest.mkdir(parents=True, exist_ok=True)
        wheel = dest / "app-1.0-py3-none-any.whl"
        wheel.write_bytes(b"wheel bytes")
        return wheel, {"artifacts": [{"kind": "wheel", "filename": wheel.name}]}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "1.0"\n[build-system]\nrequires = ["hatchling"]\n'
        'build-backend = "hatchling.build"\n'
    )
    return load_config(tmp_path / "app")


def test_every_build_of_the_config_takes_the_one_wheel(
    config: Config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    step = Step()
    monkeypatch.setattr(projectwheel, "wheel_step", step.factory)
    with EarlyWheel(config, allow_dirty=False) as early:
        early.settle()
        first, record = early(config, tmp_path / "one")
        second, again = early(config, tmp_path / "two")
        assert first == second and first.read_bytes() == b"wheel bytes"
        assert len(step.calls) == 1, "one build for every target"
        assert record == again and record is not again, "each build gets its own copy of the record"
        record["artifacts"].clear()
        assert early(config, tmp_path / "three")[1]["artifacts"], "a build's edit reaches no other"
        started_in = step.calls[0][1]
        assert started_in.is_dir()
    assert not started_in.exists(), "the wheel's directory goes with the context"


def test_another_config_runs_the_step_itself(config: Config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    step = Step()
    monkeypatch.setattr(projectwheel, "wheel_step", step.factory)
    other = load_config(config.root)
    with EarlyWheel(config, allow_dirty=False) as early:
        wheel, _ = early(other, tmp_path / "dest")
        assert wheel.parent == tmp_path / "dest"
    assert sorted(c is other for c, _ in step.calls) == [False, True]


def test_a_failed_build_raises_its_error_in_each_build_and_settles(
    config: Config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    step = Step(fail=True)
    monkeypatch.setattr(projectwheel, "wheel_step", step.factory)
    with EarlyWheel(config, allow_dirty=False) as early:
        early.settle()  # the failure settles it: nothing is waited on any more
        for dest in ("one", "two"):
            with pytest.raises(WheelError, match="the backend said no"):
                early(config, tmp_path / dest)
    assert len(step.calls) == 1


def test_settle_waits_until_the_build_waits_on_processes(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    step = Step(gate=gate)
    monkeypatch.setattr(projectwheel, "wheel_step", step.factory)
    with EarlyWheel(config, allow_dirty=False) as early:
        assert step.reached.wait(PATIENCE)
        settled = threading.Event()

        def settle() -> None:
            early.settle()
            settled.set()

        waiter = threading.Thread(target=settle)
        waiter.start()
        assert not settled.wait(0.2), "settled while the build still did its own work"
        gate.set()
        assert settled.wait(PATIENCE)
        waiter.join()


def test_leaving_on_an_error_waits_for_the_build(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    step = Step(gate=gate)
    monkeypatch.setattr(projectwheel, "wheel_step", step.factory)
    threading.Timer(0.2, gate.set).start()
    with pytest.raises(RuntimeError, match="the image failed"), EarlyWheel(config, allow_dirty=False):
        raise RuntimeError("the image failed")
    assert gate.is_set()
    (_, started_in) = step.calls[0]
    assert not started_in.exists(), "nothing left behind by a build that finished after the error"
