"""The files under ``templates/`` and the one way they are filled in.

Where the templates live:

* in an installed wheel, under ``reprobuild/templates/`` (the repository's top-level ``templates/``
  directory is mapped there by ``[tool.hatch.build.targets.wheel.force-include]``);
* in a source checkout or an editable install, in the repository's top-level ``templates/``.

Placeholders are ``@@name@@``; ``@@@@`` is a literal ``@@``. The ``@@`` delimiter was chosen because
everything the templates produce already uses ``$`` (Dockerfile and shell variables), ``${{ }}``
(GitHub Actions expressions) or ``{}`` (Python), so no escaping is needed in them. Rendering is strict
both ways: a placeholder without a value and a value without a placeholder are errors, so a template
and its renderer cannot drift apart silently.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from reprobuild.errors import TemplateError

#: The directory name inside the package (wheel) and at the repository root (checkout).
TEMPLATES_DIR = "templates"


class _Template(string.Template):
    delimiter = "@@"
    # escaped: `@@@@`; named: `@@name@@`; braced is unused (never matches); anything else after `@@` is invalid.
    pattern = r"@@(?:(?P<escaped>@@)|(?P<named>[a-z][a-z0-9_]*)@@|(?P<braced>(?!))|(?P<invalid>))"  # type: ignore[assignment]


def templates_root() -> Traversable:
    """The directory holding the templates: the installed package's copy, else the checkout's."""
    packaged = resources.files("reprobuild").joinpath(TEMPLATES_DIR)
    if packaged.is_dir():
        return packaged
    # src/reprobuild/templates.py -> <checkout>/templates
    checkout = Path(__file__).resolve().parent.parent.parent / TEMPLATES_DIR
    if checkout.is_dir():
        return checkout
    raise TemplateError(
        "repro-build's templates are missing from this installation",
        hint="reinstall repro-build; in a source checkout the top-level `templates/` directory must exist",
    )


def template_text(name: str) -> str:
    """The text of ``templates/<name>`` (``name`` is a ``/``-separated relative path)."""
    node = templates_root()
    for part in name.split("/"):
        node = node.joinpath(part)
    if not node.is_file():
        raise TemplateError(
            f"template `{TEMPLATES_DIR}/{name}` is missing",
            hint="reinstall repro-build; the installation is incomplete",
        )
    return node.read_text(encoding="utf-8")


def render(name: str, values: Mapping[str, str]) -> str:
    """Fill ``templates/<name>`` with ``values``; every placeholder must have a value and vice versa."""
    template = _Template(template_text(name))
    if not template.is_valid():
        raise TemplateError(f"template `{TEMPLATES_DIR}/{name}` has a malformed `@@` placeholder")
    wanted = set(template.get_identifiers())
    missing = sorted(wanted - set(values))
    unused = sorted(set(values) - wanted)
    if missing or unused:
        raise TemplateError(
            f"template `{TEMPLATES_DIR}/{name}` does not match its renderer "
            f"(no value for: {', '.join(missing) or '-'}; no placeholder for: {', '.join(unused) or '-'})",
            hint="this is a bug in repro-build: the template and the code that fills it disagree",
        )
    text = template.substitute(values)
    # Generated files end with exactly one newline (as every file repro-build writes).
    return text.rstrip("\n") + "\n"
