"""Checks a written build manifest against the published JSON Schema, independently of repro-build.

``jsonschema`` (not repro-build's own reader) validates the file against
``docs/reference/manifest.schema.json``; then the file must read into a
:class:`~reprobuild.manifest.schema.Manifest` and write back to the very same bytes.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

from reprobuild.manifest.indexschema import IndexManifest, index_manifest_text
from reprobuild.manifest.schema import Manifest, manifest_text

SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "reference" / "manifest.schema.json"
#: The index manifest of a multi-platform target (kind "index"), whose `images` are image manifests.
INDEX_SCHEMA_FILE = SCHEMA_FILE.with_name("index-manifest.schema.json")
#: A manifest `repro-build image` wrote for the golden project (tests/image/golden-project), unedited.
SAMPLE = Path(__file__).with_name("sample-manifest.json")


def sample() -> dict[str, Any]:
    """A fresh copy of :data:`SAMPLE`'s JSON, to edit."""
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


@functools.cache
def published_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@functools.cache
def published_index_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(INDEX_SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def schema_problems(data: object) -> list[str]:
    """Every way ``data`` breaks the published schema (empty: it is valid); an index manifest (kind "index")
    is checked against the index schema, which refers to the image schema by its ``$id``."""
    from referencing import Registry, Resource

    image = published_schema()
    index = isinstance(data, dict) and data.get("kind") == "index"
    registry: Registry[Any] = Registry().with_resource(image["$id"], Resource.from_contents(image))
    validator = jsonschema.Draft202012Validator(
        published_index_schema() if index else image, registry=registry, format_checker=jsonschema.FormatChecker()
    )
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    ]


def check_manifest_file(path: Path) -> None:
    """``path`` is valid under the published schema and round-trips byte for byte; AssertionError if not."""
    text = path.read_text(encoding="utf-8")
    problems = schema_problems(json.loads(text))
    assert not problems, f"{path} breaks {SCHEMA_FILE.name}:\n" + "\n".join(problems)
    data = json.loads(text)
    if data.get("kind") == "index":
        round_trip = index_manifest_text(IndexManifest.from_json(data, path))
    else:
        round_trip = manifest_text(Manifest.from_json(data, path))
    assert round_trip == text, f"{path} does not round-trip"
