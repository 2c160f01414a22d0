"""``repro-build wheel``: bit-for-bit reproducible sdists and wheels from any PEP 517 backend.

Modules, in pipeline order:

:mod:`~reprobuild.wheel.source`
    the snapshot of the project (git-tracked files) and its export into a fresh build root;
:mod:`~reprobuild.wheel.build`
    ``uv build`` with hashed build constraints in a normalised environment; :func:`build_wheel`;
:mod:`~reprobuild.wheel.container`
    the same steps inside a builder image pinned by digest (``--in-container``);
:mod:`~reprobuild.wheel.canonical_sdist`, :mod:`~reprobuild.wheel.canonical_zip`, :mod:`~reprobuild.wheel.record`
    the canonical archive forms and the regenerated wheel ``RECORD``;
:mod:`~reprobuild.wheel.outputs`
    the build record (``<name>-<version>.build.json``) the build manifest embeds;
:mod:`~reprobuild.wheel.check`, :mod:`~reprobuild.wheel.diffreport`
    the double build under varied host conditions, and the member-level explanation of a difference
    (imported from their modules: an image build, which builds a wheel, does not pay for importing them).
"""

from reprobuild.wheel.build import build_wheel
from reprobuild.wheel.outputs import Artifact, Backend, Builder, WheelRecord

__all__ = [
    "Artifact",
    "Backend",
    "Builder",
    "WheelRecord",
    "build_wheel",
]
