"""``repro-build lock``: hashed constraints per target (uv) and a hashed build-constraints file.

Files (all under ``repro-locks/``):

``<target>.txt``
    ``uv pip compile --generate-hashes`` for the target's exact Python and ``--python-platform``;
    accepted by ``uv pip install --require-hashes``.
``build.txt``
    the project's ``build-system.requires``, resolved universally (any build host) with hashes, for
    ``uv build --build-constraint repro-locks/build.txt --require-hashes``.
``inputs.json``
    every input that affects each lock and each lock file's sha256, so ``lock --check`` can say
    *what* changed (apko's ``config.checksum`` idea, with the inputs kept so the diff is explainable).

Locking itself (:func:`reprobuild.lock.compile.lock_project`) is imported from its module: a build only
checks the locks, and does not pay for importing what writes them.
"""

from reprobuild.lock.check import Staleness, check_build_lock, check_locks
from reprobuild.lock.inputs import build_lock_path, target_lock_path
from reprobuild.lockdir import BUILD_LOCK, INPUTS_FILE

__all__ = [
    "BUILD_LOCK",
    "INPUTS_FILE",
    "Staleness",
    "build_lock_path",
    "check_build_lock",
    "check_locks",
    "target_lock_path",
]
