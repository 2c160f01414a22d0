"""A wheels-only target lock that meets an sdist names the package and points at `binary-only = false`."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.config import Target, load_config
from reprobuild.errors import ToolError
from reprobuild.lock.compile import _binary_only_error


@pytest.fixture
def target(tmp_path: Path) -> Target:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "1"\n')
    return load_config(tmp_path).target("cpu")


@pytest.mark.parametrize(
    ("message", "package"),
    [
        ("hint: Wheels are required for `docopt` because building from source is disabled", "docopt"),
        ("Because all versions of docopt have no usable wheels and app depends on docopt", "docopt"),
        (
            "error: Failed to build `legacy-pkg==0.3`\n  Caused by: Building source distributions is disabled",
            "legacy-pkg",
        ),
        ("error: Failed to download and build `pkg @ https://example.invalid/pkg.tar.gz`", "pkg"),
    ],
)
def test_the_package_is_named(target: Target, message: str, package: str) -> None:
    err = _binary_only_error(target, ToolError(message))
    assert f"{package!r} has no wheel" in err.message
    assert err.hint is not None and "binary-only = false" in err.hint and f"`{package}`" in err.hint


def test_unnamed_sdist_refusal_still_gets_the_hint(target: Target) -> None:
    err = _binary_only_error(target, ToolError("error: Building source distributions is disabled"))
    assert "only available as an sdist" in err.message and "Building source distributions is disabled" in err.message
    assert err.hint is not None and "`binary-only = false` in `[tool.repro-build.targets.cpu]`" in err.hint


def test_other_errors_pass_through(target: Target) -> None:
    err = _binary_only_error(target, ToolError("network down", hint="retry"))
    assert (err.message, err.hint) == ("network down", "retry")
