"""A small, strict parser for Debian control-file syntax (deb822).

Spec: Debian Policy §5.1 "Syntax of control files" (stanzas separated by blank lines, ``Field: value``,
continuation lines start with a space or tab, ``#`` comment lines only in some files).

Why not ``python-debian``: we need three things from it (stanza splitting, the relationship grammar
and version comparison), each a few dozen lines; its ``Deb822`` class is untyped for mypy strict
and parsing a 50 MB ``Packages`` file through it is several times slower than this splitter.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from reprobuild.errors import BaseImageError

Stanza = Mapping[str, str]


def iter_stanzas(text: str, origin: str, *, comments: bool = False) -> Iterator[dict[str, str]]:
    """Yield each stanza of ``text`` as ``{field: value}`` (field names as written, values stripped).

    Multi-line values keep their continuation lines joined with ``\\n`` (leading space removed, a
    lone ``.`` kept as is). ``comments`` allows ``#`` lines (deb822 ``.sources`` files). A line that
    is neither a field nor a continuation raises :class:`BaseImageError` naming ``origin`` and the
    line number.
    """
    fields: dict[str, str] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if comments and line.lstrip().startswith("#"):
            continue
        if not line.strip():
            if fields:
                yield fields
            fields, current = {}, None
            continue
        if line[0] in " \t":
            if current is None:
                raise BaseImageError(
                    f"{origin}, line {number}: a continuation line comes before any field",
                    hint="the file is not in deb822 control syntax (Debian Policy §5.1)",
                )
            value = fields[current]
            fields[current] = f"{value}\n{line.strip()}" if value else line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or " " in name:
            raise BaseImageError(
                f"{origin}, line {number}: expected `Field: value`, got {raw[:80]!r}",
                hint="the file is not in deb822 control syntax (Debian Policy §5.1)",
            )
        current = name
        fields[name] = value.strip()
    if fields:
        yield fields


def format_stanza(fields: list[tuple[str, str]]) -> str:
    """Render one stanza (fields in the given order), multi-line values indented by one space."""
    out: list[str] = []
    for name, value in fields:
        first, *rest = value.split("\n")
        out.append(f"{name}: {first}".rstrip() if first else f"{name}:")
        out.extend(f" {line}" if line else " ." for line in rest)
    return "\n".join(out) + "\n"
