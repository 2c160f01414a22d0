"""The declared licence of a Debian package, read from its ``/usr/share/doc/<package>/copyright``.

Only machine-readable copyright files are read (DEP-5, "Machine-readable debian/copyright file",
https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/): the header stanza carries
``Format: …copyright-format/1.0…``; each ``Files:`` stanza a ``License:`` whose first line is a
short name or an expression of short names joined by ``or``/``and`` (``,`` binds like ``and``) with
``with <exception>``. The package's declared licence is the conjunction (``AND``) of the distinct
licences of all its ``Files:`` stanzas, each short name mapped to its SPDX identifier
(:data:`DEBIAN_TO_SPDX` and the ``GPL-2+`` → ``GPL-2.0-or-later`` rule). The result is checked
against the SPDX licence list that ``packaging.licenses`` ships.

``None`` (written as ``NOASSERTION``) when the file is missing, is free text (no ``Format:``
header: many of Debian's oldest packages, libc6 and coreutils among them), or names a licence that
has no SPDX identifier (``public-domain``, ``permissive``, a project's own wording): a guess would be
worse than saying nothing.
"""

from __future__ import annotations

import re

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

from reprobuild.base.debian.deb822 import iter_stanzas
from reprobuild.errors import BaseImageError

#: DEP-5 short names whose SPDX identifier is spelled differently (copyright-format 1.0 §"License
#: short name"; SPDX licence list 3.x). The GNU families are handled by :data:`_GNU`; names that are
#: already SPDX identifiers (Apache-2.0, MPL-2.0, ISC, Zlib, CC0-1.0, BSD-3-clause in any case) pass
#: through :func:`packaging.licenses.canonicalize_license_expression`.
DEBIAN_TO_SPDX: dict[str, str] = {
    "expat": "MIT",
    "zope-2.1": "ZPL-2.1",
    "psf-2": "PSF-2.0",
    "python-2": "Python-2.0",
    "artistic": "Artistic-1.0",
    "artistic-1": "Artistic-1.0",
    "artistic-2": "Artistic-2.0",
    "apache-2": "Apache-2.0",
    "mpl-1.1": "MPL-1.1",
    "mpl-2": "MPL-2.0",
    "bsl-1.0": "BSL-1.0",
    "gpl-2-with-openssl-exception": "",  # no SPDX exception of that name: stays NOASSERTION
}

#: ``GPL-2``, ``LGPL-2.1+``, ``AGPL-3``, ``GFDL-1.3+`` (DEP-5 spelling) → SPDX ``-only``/``-or-later``.
_GNU = re.compile(r"^(A?GPL|LGPL|GFDL)-(\d)(?:\.(\d))?(\+)?$", re.IGNORECASE)
_FORMAT = re.compile(r"copyright-format/1\.0|dep5", re.IGNORECASE)
#: Debian's spellings of exception names → SPDX exception identifiers.
_EXCEPTIONS = {"gcc-exception-3.1": "GCC-exception-3.1", "gcc-exception-2.0": "GCC-exception-2.0"}


def spdx_id(short_name: str) -> str | None:
    """The SPDX identifier of one DEP-5 short name, or None when it has none."""
    name = short_name.strip()
    gnu = _GNU.match(name)
    if gnu:
        family, major, minor, later = gnu.groups()
        return f"{family.upper()}-{major}.{minor or '0'}-{'or-later' if later else 'only'}"
    mapped = DEBIAN_TO_SPDX.get(name.lower())
    if mapped is not None:
        return mapped or None
    try:
        return str(canonicalize_license_expression(name))
    except InvalidLicenseExpression:
        return None


def _term(text: str) -> str | None:
    """``GPL-3+ with GCC-exception-3.1`` → ``GPL-3.0-or-later WITH GCC-exception-3.1``."""
    parts = re.split(r"\s+with\s+", text.strip(), maxsplit=1, flags=re.IGNORECASE)
    base = spdx_id(parts[0])
    if base is None:
        return None
    if len(parts) == 1:
        return base
    exception = parts[1]
    known = _EXCEPTIONS.get(exception.strip().lower())
    return f"{base} WITH {known}" if known else None


def synopsis_expression(synopsis: str) -> str | None:
    """An SPDX expression for a DEP-5 ``License:`` first line, or None when any part has no SPDX id."""
    alternatives = []
    for alternative in re.split(r"\s+or\s+|\s*\|\s*", synopsis.strip(), flags=re.IGNORECASE):
        terms = [t for t in re.split(r"\s+and\s+|\s*,\s*", alternative, flags=re.IGNORECASE) if t.strip()]
        mapped = [_term(t) for t in terms]
        if not mapped or any(m is None for m in mapped):
            return None
        alternatives.append(" AND ".join(str(m) for m in mapped))
    if not alternatives:
        return None
    if len(alternatives) == 1:
        return alternatives[0]
    return " OR ".join(f"({a})" if " AND " in a else a for a in alternatives)


def declared_license(text: str, *, origin: str) -> str | None:
    """The package licence a machine-readable copyright file declares; None otherwise (module docstring)."""
    try:
        stanzas = list(iter_stanzas(text, origin))
    except BaseImageError:
        return None  # free text that happens to break deb822 syntax
    if not stanzas or not _FORMAT.search(stanzas[0].get("Format", "")):
        return None
    expressions: list[str] = []
    for stanza in stanzas[1:]:
        if "Files" not in stanza or "License" not in stanza:
            continue
        synopsis = stanza["License"].split("\n", 1)[0]
        expression = synopsis_expression(synopsis)
        if expression is None:
            return None
        if expression not in expressions:
            expressions.append(expression)
    if not expressions:
        return None
    combined = " AND ".join(f"({e})" if " OR " in e else e for e in expressions)
    try:
        return str(canonicalize_license_expression(combined))
    except InvalidLicenseExpression:
        return None
