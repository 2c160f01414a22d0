"""Golden outputs: recorded digests and files that pin repro-build's bytes, and the one way to refresh them.

A golden value is compared, never silently rewritten. After an intended change of output, refresh every
golden value with ``nox -s golden``, which runs the tests that use the ``golden`` fixture (the ``golden``
marker) with ``REPRO_BUILD_UPDATE_GOLDEN=1``; then review ``git diff`` and say why in the commit.
That variable is the only one: set by hand it refreshes whatever golden tests run.

Digests that depend on a pinned library (the compressors) are keyed by the versions that produced them
(:func:`compressor_key`, what the build manifest and the wheel record name): a new pin adds an entry
beside the old ones instead of moving them, and a machine with other versions fails naming the key it
lacks, not a mismatch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reprobuild.oci.compress import Compressor
from reprobuild.wheel.canonical_sdist import gzip_compressor
from reprobuild.wheel.canonical_zip import zip_compressor

#: The variable that refreshes golden values (``nox -s golden`` sets it).
UPDATE_VARIABLE = "REPRO_BUILD_UPDATE_GOLDEN"
_REFRESH = f"`nox -s golden` ({UPDATE_VARIABLE}=1) refreshes it after an intended change; review the diff"


def updating() -> bool:
    return os.environ.get(UPDATE_VARIABLE) == "1"


def compressor_key() -> str:
    """Every compressor version the pinned outputs depend on, as the build manifest and wheel record name them."""
    g, z = Compressor.gzip().describe(), Compressor.zstd().describe()
    return (
        f"gzip: {g['library']} {g['library_version']} ({g['package']} {g['package_version']}) level {g['level']} "
        f"block {g['block_size']}; zstd: {z['library']} {z['library_version']} (libzstd {z['c_library_version']}) "
        f"level {z['level']}; wheel: {zip_compressor().describe()}; sdist: {gzip_compressor().describe()}"
    )


@dataclass(frozen=True)
class Golden:
    """What the ``golden`` fixture gives a test: comparisons that refresh under :data:`UPDATE_VARIABLE`."""

    update: bool

    def digests(self, file: Path, got: Mapping[str, object], *, key: str | None = None) -> None:
        """``got`` equals the entry ``key`` (default :func:`compressor_key`) of the JSON ``file``."""
        key = compressor_key() if key is None else key
        golden: dict[str, object] = json.loads(file.read_text()) if file.exists() else {}
        if self.update:
            golden[key] = dict(got)
            file.write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n")
        assert key in golden, f"{file.name} has no entry for {key!r}: {_REFRESH}"
        assert dict(got) == golden[key], f"the outputs differ from {file.name} [{key!r}]: {_REFRESH}"

    def text(self, file: Path, got: str) -> None:
        """``got`` equals the contents of ``file``."""
        if self.update:
            file.write_text(got, encoding="utf-8")
        assert file.is_file(), f"{file} is missing: {_REFRESH}"
        assert got == file.read_text(encoding="utf-8"), f"the output differs from {file.name}: {_REFRESH}"
