"""``repro-build wheel``: bit-for-bit reproducible sdists and wheels from any PEP 517 backend.

Modules, in pipeline order:

:mod:`~repro_build.wheel.source`
    the snapshot of the project (git-tracked files) and its export into a fresh build root;
:mod:`~repro_build.wheel.build`
    ``uv build`` with hashed build constraints in a normalised environment; :func:`build_wheel`;
:mod:`~repro_build.wheel.container`
    the same steps inside a builder image pinned by digest (``--in-container``);
:mod:`~repro_build.wheel.canonical_sdist`, :mod:`~repro_build.wheel.canonical_zip`, :mod:`~repro_build.wheel.record`
    the canonical archive forms and the regenerated wheel ``RECORD``;
:mod:`~repro_build.wheel.outputs`
    the build record (``<name>-<version>.build.json``) the build manifest embeds;
:mod:`~repro_build.wheel.check`, :mod:`~repro_build.wheel.diffreport`
    the double build under varied host conditions, and the member-level explanation of a difference.
"""

from repro_build.wheel.build import build_wheel
from repro_build.wheel.check import CheckResult, NotReproducibleError, check_wheel
from repro_build.wheel.outputs import Artifact, Backend, Builder, WheelRecord

__all__ = [
    "Artifact",
    "Backend",
    "Builder",
    "CheckResult",
    "NotReproducibleError",
    "WheelRecord",
    "build_wheel",
    "check_wheel",
]
