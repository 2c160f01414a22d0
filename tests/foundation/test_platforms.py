"""The host's architecture: one table, and an error (not a silent default) on any other machine."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from reprobuild import platforms
from reprobuild.cli.main import main
from reprobuild.errors import ConfigError


@pytest.mark.parametrize(("machine", "arch"), [("x86_64", "amd64"), ("AMD64", "amd64"), ("aarch64", "arm64")])
def test_known_machines(monkeypatch: pytest.MonkeyPatch, machine: str, arch: str) -> None:
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert platforms.host_arch() == arch == platforms.require_host_arch(hint="unused")
    assert platforms.ARCHES[arch] in ("x86_64", "aarch64")


def test_another_machine_is_an_error_with_the_callers_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    assert platforms.host_arch() is None
    with pytest.raises(ConfigError) as err:
        platforms.require_host_arch(hint="pass `--arch`")
    assert "('riscv64') is neither amd64 nor arm64" in err.value.message and err.value.hint == "pass `--arch`"


def test_base_lock_on_another_machine_asks_for_arch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    assert main(["base", "lock", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "riscv64" in err and "--arch amd64" in err and "Traceback" not in err


def test_each_platform_has_its_output_directory() -> None:
    """`build/<target>/linux-<arch>`: where `image` writes a platform's outputs and `verify` looks for them."""
    assert [platforms.platform_dir(arch) for arch in platforms.ARCHES] == ["linux-amd64", "linux-arm64"]
