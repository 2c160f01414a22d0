"""``--json``: one JSON document on stdout with a command's results; logs stay on stderr.

Every command that produces results (digests, paths, sizes, timings, verdicts) takes ``--json``. Its
document is a JSON object written once, at the end, sorted by key; nothing else goes to stdout.
Paths are absolute strings, sizes are bytes, timings are seconds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reprobuild.cli.output import data


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document with the results on stdout (logs go to stderr)"
    )


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return str(value)


def emit_json(document: dict[str, Any]) -> None:
    """Write ``document`` as the one JSON document of this command on stdout."""
    data(json.dumps(document, indent=2, sort_keys=True, default=_default))
