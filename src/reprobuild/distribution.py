"""repro-build's names: the distribution on the package index, the command, and how it was installed.

The distribution is ``reprobuild`` (``repro-build`` on the index is another project); the command stays
``repro-build`` and the import package ``reprobuild``. Every place that installs, looks up or records the
distribution takes its name from :data:`DISTRIBUTION`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

#: The name on the package index (``pip install reprobuild``).
DISTRIBUTION = "reprobuild"
#: The console command, and the key of repro-build's own version in a manifest's ``tools`` record.
COMMAND = "repro-build"


@dataclass(frozen=True)
class Origin:
    """Where the running repro-build was installed from.

    ``from_index`` is true for an ordinary install from a package index (no PEP 610 ``direct_url.json``);
    ``detail`` names the checkout, URL or editable path otherwise.
    """

    from_index: bool
    detail: str


def installed_origin() -> Origin:
    """How the running repro-build was installed (PEP 610: ``direct_url.json`` marks a non-index install)."""
    from importlib.metadata import PackageNotFoundError, distribution  # ~0.1 s to import: only when asked

    try:
        dist = distribution(DISTRIBUTION)
    except PackageNotFoundError:
        return Origin(False, "a source tree that was never installed")
    raw = dist.read_text("direct_url.json")
    if raw is None:
        return Origin(True, "a package index")
    try:
        direct = json.loads(raw)
    except json.JSONDecodeError:
        return Origin(False, "an unreadable direct_url.json")
    url = direct.get("url") if isinstance(direct, dict) else None
    editable = isinstance(direct, dict) and bool(direct.get("dir_info", {}).get("editable"))
    where = str(url) if isinstance(url, str) else "a direct URL"
    return Origin(False, f"{'an editable install of ' if editable else ''}{where}")


@functools.cache
def code_digest() -> str:
    """sha256 over the running repro-build's own source files (relative path and bytes, in path order).

    Cache keys that stand for "what repro-build would write" carry it besides the version: two installs of
    one version from different commits (a checkout, an editable install, a pre-release) may write
    different bytes, and an entry one wrote must not be taken for the other's.
    """
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()
