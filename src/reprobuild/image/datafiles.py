"""Weights and data files: project files each shipped in a content-addressed layer of its own.

``[tool.repro-build.targets.<t>] files = { "models/w.bin" = "/opt/models/w.bin" }`` maps project files to
image paths. Each becomes one layer holding that file alone (mode 0644, the fixed dependency mtime), so the
layer's digest depends only on the file's bytes and its image path: an app change leaves it untouched, and
the layer cache re-hashes an unchanged file instead of compressing it again. The manifest records each
file's sha256 and layer (``files``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprobuild.config import Config, Target
from reprobuild.errors import ConfigError
from reprobuild.image.plan import LayerGroup
from reprobuild.oci.digest import sha256_file
from reprobuild.oci.tarwriter import LayerEntry

#: Data files are read, never run.
DATA_MODE = 0o644


@dataclass(frozen=True)
class DataFile:
    """One project file and where it goes in the image."""

    source: str  # relative to the project
    path: str  # absolute, in the image
    file: Path  # on this host
    sha256: str  # sha256:<hex>
    size: int

    def group(self) -> LayerGroup:
        return LayerGroup("file", (), self.size, path=self.path)

    def entry(self) -> LayerEntry:
        return LayerEntry.file(self.path, source=self.file, mode=DATA_MODE)

    def to_dict(self, layer: int) -> dict[str, Any]:
        return {"layer": layer, "path": self.path, "sha256": self.sha256, "size": self.size, "source": self.source}


def data_files(config: Config, target: Target) -> list[DataFile]:
    """The target's ``files``, checked to be regular files inside the project and hashed."""
    root = config.root.resolve()
    out = []
    for source, dest in target.files:
        file = root / source
        resolved = file.resolve()
        where = f"`[tool.repro-build.targets.{target.name}] files`: {source!r}"
        if not resolved.is_relative_to(root):
            raise ConfigError(f"{where} leads outside the project", hint="copy the file into the project")
        if not resolved.is_file():
            raise ConfigError(
                f"{where} is not a file in the project",
                hint="create or fetch it before `repro-build image` (and commit it, so `verify` finds it)",
            )
        digest, size = sha256_file(resolved)
        out.append(DataFile(source, dest, resolved, str(digest), size))
    return out


def with_file_groups(groups: Sequence[LayerGroup], files: Sequence[DataFile]) -> list[LayerGroup]:
    """``groups`` with one layer per data file, below the project and app layers (they change most)."""
    top = [g for g in groups if g.kind in ("project", "app")]
    return [*(g for g in groups if g not in top), *(f.group() for f in files), *top]


def file_records(files: Sequence[DataFile], holds: Sequence[str]) -> list[dict[str, Any]]:
    """The manifest's ``files``: each file with the index of its layer among ``holds`` (all layers)."""
    return [f.to_dict(layer=list(holds).index(f.group().name)) for f in files]
