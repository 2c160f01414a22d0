"""The lock, once written, decides the values a project leaves unset: another host changes nothing.

"Another host" is simulated by replacing the two host probes of :mod:`reprobuild.config` (the running
Python's version, the machine's architecture).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprobuild import config as config_mod
from reprobuild.config import load_config
from reprobuild.errors import ConfigError
from reprobuild.lock import check_locks
from reprobuild.lock.compile import lock_project
from tests.foundation.helpers import BASIC_PROJECT, write_project

pytestmark = pytest.mark.network  # locking asks the package index


def other_host(monkeypatch: pytest.MonkeyPatch, python: str = "3.13", arch: str | None = "arm64") -> None:
    monkeypatch.setattr(config_mod, "default_python", lambda requires_python: python)
    monkeypatch.setattr(config_mod, "host_arch", lambda: arch)


@pytest.fixture
def zero_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with no `[tool.repro-build]`, locked on a Python 3.11 amd64 host."""
    root = write_project(tmp_path / "proj")
    with monkeypatch.context() as m:
        other_host(m, python="3.11", arch="amd64")
        lock_project(load_config(root))
    return root


def test_first_lock_records_the_hosts_defaults(zero_config: Path) -> None:
    inputs = json.loads((zero_config / "repro-locks" / "inputs.json").read_text())
    assert inputs["defaults"] == {"manylinux": "manylinux_2_28", "platform": "linux/amd64", "python": "3.11"}
    assert inputs["locks"]["cpu.txt"]["inputs"]["python"] == "3.11"
    header = (zero_config / "repro-locks" / "cpu.txt").read_text().splitlines()[2]
    assert header == "# Target 'cpu': Python 3.11, x86_64-manylinux_2_28, wheels only."


def test_another_host_reads_the_lock_and_finds_it_current(zero_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other_host(monkeypatch)  # Python 3.13 on arm64
    config = load_config(zero_config)
    cpu = config.target("cpu")
    assert (config.python, cpu.python, cpu.platform, cpu.python_platform) == (
        "3.11",
        "3.11",
        "linux/amd64",
        "x86_64-manylinux_2_28",
    )
    assert config.defaults["python"] == {"value": "3.11", "from": "lock"}
    assert config.defaults["platform"] == {"value": "linux/amd64", "from": "lock"}
    assert check_locks(config) == []


def test_relocking_on_another_host_keeps_the_recorded_values(
    zero_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {p.name: p.read_bytes() for p in (zero_config / "repro-locks").iterdir()}
    other_host(monkeypatch)
    lock_project(load_config(zero_config))
    assert {p.name: p.read_bytes() for p in (zero_config / "repro-locks").iterdir()} == before


def test_a_lock_without_recorded_defaults_is_read_from_its_targets(
    zero_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locks written before `defaults` existed: each target's inputs still say what it was locked for."""
    path = zero_config / "repro-locks" / "inputs.json"
    data = json.loads(path.read_text())
    del data["defaults"]
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    other_host(monkeypatch, arch=None)  # a machine that is neither amd64 nor arm64
    assert check_locks(load_config(zero_config)) == []


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        ('[tool.repro-build]\npython = "3.12"\n', "repro-locks/cpu.txt: python: '3.11' -> '3.12'"),
        (
            '[tool.repro-build.targets.cpu]\nplatform = "linux/arm64"\n',
            "repro-locks/cpu.txt: python-platform: 'x86_64-manylinux_2_28' -> 'aarch64-manylinux_2_28'",
        ),
        (
            '[tool.repro-build]\nmanylinux = "manylinux_2_34"\n',
            "repro-locks/cpu.txt: python-platform: 'x86_64-manylinux_2_28' -> 'x86_64-manylinux_2_34'",
        ),
    ],
)
def test_an_explicit_change_is_still_stale(
    zero_config: Path, monkeypatch: pytest.MonkeyPatch, tool: str, expected: str
) -> None:
    write_project(zero_config, BASIC_PROJECT, tool=tool)
    other_host(monkeypatch, python="3.11", arch="amd64")  # the very host that locked it
    assert expected in [str(p) for p in check_locks(load_config(zero_config))]


def test_a_recorded_python_outside_requires_python_is_not_used(
    zero_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(zero_config, BASIC_PROJECT.replace('">=3.11"', '">=3.12"'))
    other_host(monkeypatch)
    config = load_config(zero_config)
    assert config.python == "3.13" and config.defaults["python"]["from"] == "host"
    assert "repro-locks/cpu.txt: python: '3.11' -> '3.13'" in [str(p) for p in check_locks(config)]


def test_an_unknown_machine_without_a_lock_must_name_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(tmp_path / "fresh")
    other_host(monkeypatch, arch=None)
    with pytest.raises(ConfigError) as err:
        load_config(root)
    assert "`tool.repro-build.targets.cpu.platform` is not set" in err.value.message
    assert err.value.hint is not None and 'platform = "linux/amd64"' in err.value.hint
