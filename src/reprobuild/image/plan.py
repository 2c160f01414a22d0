"""Which installed distributions go into which layer.

Bottom to top (docs/explanation/determinism.md, "The approach"): every large wheel in a layer of its own
(matched by a split pattern such as ``torch``/``nvidia-*``, or installed size at or above the threshold), then all other
third-party wheels in one layer, then the project's own wheel, then the app layer (determinism hook,
policy). An app-only change therefore re-pushes only the top layers. When the image would exceed the
layer budget, the smallest single-wheel layers are folded into the shared third-party layer.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from packaging.utils import canonicalize_name

from reprobuild.config import LayerPolicy
from reprobuild.errors import ConfigError
from reprobuild.image.pyenv import Distribution

#: Sizes are binary megabytes: 50 "MB" = 50 MiB of installed files.
MIB = 1 << 20

GroupKind = Literal["wheel", "wheels", "project", "app", "file"]


@dataclass(frozen=True)
class LayerGroup:
    """One layer to write: its kind, the distributions in it, and their installed size."""

    kind: GroupKind
    distributions: tuple[str, ...]
    size: int
    path: str | None = None  # the image path of a "file" layer (see image/datafiles.py)

    @property
    def name(self) -> str:
        if self.kind == "file":
            return f"file {self.path}"
        if self.kind == "wheel":
            return f"wheel {self.distributions[0]}"
        if self.kind == "project":
            return f"project {self.distributions[0]}"
        return {"wheels": "third-party wheels", "app": "app"}[self.kind]


def _split(name: str, size: int, policy: LayerPolicy) -> bool:
    patterns = [canonicalize_name(p) for p in policy.split]  # `*` survives PEP 503 normalisation
    return size >= policy.threshold_mb * MIB or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def plan_layers(
    distributions: Sequence[Distribution],
    project: str | None,
    policy: LayerPolicy,
    base_layers: int,
    *,
    project_layer: bool = False,
) -> list[LayerGroup]:
    """The layer groups above the base, bottom first, within ``policy.budget`` layers in total.

    ``project_layer``: the project's layer counts against the budget although its distribution is not
    among ``distributions`` (the third-party wheels are planned while the project wheel still builds).
    """
    project_name = canonicalize_name(project) if project else None
    alone: list[LayerGroup] = []
    shared: list[Distribution] = []
    own: Distribution | None = None
    for dist in sorted(distributions, key=lambda d: d.name):
        if dist.name == project_name:
            own = dist
        elif _split(dist.name, dist.installed_size, policy):
            alone.append(LayerGroup("wheel", (dist.name,), dist.installed_size))
        else:
            shared.append(dist)
    fixed = 1 + (own is not None or project_layer)  # the app layer, and the project layer if there is one
    allowed = policy.budget - base_layers - fixed
    if allowed < 1 and (alone or shared):
        raise ConfigError(
            f"the base already has {base_layers} layers; with the project and app layers that leaves no "
            f"room for the wheels within the layer budget of {policy.budget}",
            hint="raise `layers.budget` for this target (Docker's own limit is 127)",
        )
    # Fold the smallest single-wheel layers into the shared layer until everything fits.
    while alone and len(alone) + (1 if shared else 0) > max(allowed, 0):
        smallest = min(alone, key=lambda g: (g.size, g.distributions))
        alone.remove(smallest)
        shared.extend(d for d in distributions if d.name == smallest.distributions[0])
    groups = list(alone)
    if shared:
        names = tuple(sorted(d.name for d in shared))
        groups.append(LayerGroup("wheels", names, sum(d.installed_size for d in shared)))
    if own is not None:
        groups.append(LayerGroup("project", (own.name,), own.installed_size))
    groups.append(LayerGroup("app", (), 0))
    return groups
