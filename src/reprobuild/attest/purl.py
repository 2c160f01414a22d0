"""Package URLs (purl-spec ``PURL-SPECIFICATION.rst``): ``pkg:type/namespace/name@version?qualifiers``.

Each component is percent-encoded except unreserved characters and ``:`` (as packageurl-python
writes them: ``libstdc++6`` → ``libstdc%2B%2B6``); qualifiers are sorted by key. Types used here:
``deb`` (namespace = the distribution's os-release ``ID``; qualifiers ``arch`` and ``distro``),
``pypi`` (the normalised project name, PEP 503) and ``oci`` (the image by digest; qualifier ``tag``).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote


def _enc(text: str) -> str:
    return quote(text, safe=":")


def purl(
    type_: str,
    name: str,
    version: str | None = None,
    *,
    namespace: str | None = None,
    qualifiers: Mapping[str, str] | None = None,
) -> str:
    """One package URL; empty qualifiers are left out."""
    out = f"pkg:{type_}/"
    if namespace:
        out += "/".join(_enc(part) for part in namespace.split("/")) + "/"
    out += _enc(name)
    if version:
        out += f"@{_enc(version)}"
    kept = sorted((k, v) for k, v in (qualifiers or {}).items() if v)
    if kept:
        out += "?" + "&".join(f"{k}={_enc(v)}" for k, v in kept)
    return out
