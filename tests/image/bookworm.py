"""A throwaway one-package project whose targets build on the real Debian bookworm base (linux/amd64), for the
tests that run the whole CLI on it: `image --json`, the smoke test, the standard-library byte-code."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path


def bookworm_project(
    root: Path,
    name: str,
    *,
    dependencies: Sequence[str] = (),
    scripts: Mapping[str, str] | None = None,
    tool: str = "",
    targets: Mapping[str, str] | None = None,
) -> Path:
    """Write ``root/pyproject.toml`` and an empty package ``src/<name>``; return ``root``.

    ``scripts``: ``[project.scripts]``; ``tool``: more ``[tool.repro-build]`` lines; ``targets``: each
    target's name and its lines beyond the base and platform (default: one target ``cpu``).
    """
    package = root / "src" / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    lines = [
        "[project]",
        f'name = "{name}"',
        'version = "0.1.0"',
        'requires-python = ">=3.11"',
        f"dependencies = {json.dumps(list(dependencies))}",
        "",
    ]
    if scripts:
        lines += ["[project.scripts]", *(f'{k} = "{v}"' for k, v in scripts.items()), ""]
    lines += [
        "[build-system]",
        'requires = ["hatchling==1.33.0"]',
        'build-backend = "hatchling.build"',
        "",
        "[tool.repro-build]",
        'python = "3.11"',
        'source-date-epoch = "git"',
        *([tool] if tool else []),
    ]
    for target, more in (targets if targets is not None else {"cpu": ""}).items():
        lines += ["", f"[tool.repro-build.targets.{target}]", 'base = "debian:bookworm"', 'platform = "linux/amd64"']
        lines += [more] if more else []
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return root
