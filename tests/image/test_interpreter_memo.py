"""The interpreter ``uv python find`` found for an exact version is remembered, sealed, and re-probed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprobuild.errors import ToolError
from reprobuild.image import interpreter as interp_mod
from reprobuild.image.interpreter import find_interpreter


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_BUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("REPRO_BUILD_CACHE_KEY", raising=False)
    monkeypatch.delenv("REPRO_BUILD_BYTECODE_PYTHON", raising=False)
    interp_mod._find.cache_clear()


def _no_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: str) -> tuple[str | None, str]:
        return None, "uv was not asked"

    monkeypatch.setattr(interp_mod, "_uv_find", refuse)
    interp_mod._find.cache_clear()


def test_an_exact_version_is_found_again_without_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exact = find_interpreter("3.11")  # whatever 3.11 uv finds; then ask for its exact version
    first = find_interpreter(exact.version)
    assert (tmp_path / "cache" / "interpreters" / f"{exact.version}.json").is_file()
    _no_uv(monkeypatch)
    again = find_interpreter(exact.version)
    assert again == first
    # Only exact versions are remembered: a minor-only request still asks uv.
    with pytest.raises(ToolError, match="uv was not asked"):
        find_interpreter("3.11")


def test_an_entry_not_sealed_by_this_key_or_naming_another_version_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exact = find_interpreter("3.11")
    find_interpreter(exact.version)
    entry = tmp_path / "cache" / "interpreters" / f"{exact.version}.json"
    data = json.loads(entry.read_text())
    data["payload"]["path"] = "/bin/sh"  # someone who can write the cache, not read the key
    entry.write_text(json.dumps(data))
    _no_uv(monkeypatch)
    with pytest.raises(ToolError, match="uv was not asked"):
        find_interpreter(exact.version)
    # A well-sealed entry whose program now reports another version (upgraded in place) is not used either.
    monkeypatch.undo()
    _own = tmp_path / "cache"
    monkeypatch.setenv("REPRO_BUILD_CACHE", str(_own))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    interp_mod._find.cache_clear()
    other = "3.11.0" if exact.version != "3.11.0" else "3.11.1"
    interp_mod._remember(other, exact)
    _no_uv(monkeypatch)
    with pytest.raises(ToolError, match="uv was not asked"):
        find_interpreter(other)
