"""The index manifest of a multi-platform target: its dataclasses and docs/reference/index-manifest.schema.json
agree, it round-trips, and the reader refuses an index whose images disagree with it."""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from reprobuild.errors import ManifestError
from reprobuild.manifest.indexschema import IndexManifest, IndexOutputs, index_manifest_text, read_any_manifest
from reprobuild.manifest.schema import Manifest
from tests.manifest.schemacheck import check_manifest_file, published_index_schema, sample, schema_problems

DIGEST = "sha256:" + "ab" * 32


def _index() -> dict[str, Any]:
    """An index manifest of the sample image manifest (linux/amd64) and a copy of it made linux/arm64."""
    amd64 = sample()
    arm64 = copy.deepcopy(amd64)
    arm64["outputs"]["platform"] = "linux/arm64"
    return {
        "schema": amd64["schema"],
        "kind": "index",
        "target": amd64["target"],
        "platforms": ["linux/amd64", "linux/arm64"],
        "index": {"digest": DIGEST, "media_type": "application/vnd.oci.image.index.v1+json", "size": 928},
        "images": [amd64, arm64],
    }


def _keys(cls: type) -> set[str]:
    return {f.metadata.get("key") or f.name for f in fields(cls)}


def test_dataclass_fields_are_the_schema_properties() -> None:
    schema = published_index_schema()
    assert schema["additionalProperties"] is False
    assert _keys(IndexManifest) == set(schema["properties"]) == set(schema["required"])
    outputs = schema["properties"]["index"]
    assert outputs["additionalProperties"] is False
    assert _keys(IndexOutputs) == set(outputs["properties"]) == set(outputs["required"])


def test_an_index_manifest_is_valid_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    text = index_manifest_text(IndexManifest.from_json(_index(), path))
    path.write_text(text)
    check_manifest_file(path)
    read = read_any_manifest(path)
    assert isinstance(read, IndexManifest)
    assert all(isinstance(m, Manifest) for m in read.images)
    assert read.index.digest == DIGEST


def _edit(data: dict[str, Any], where: str, value: object) -> dict[str, Any]:
    node: Any = data
    keys = where.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    node[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("platforms", ["linux/arm64", "linux/amd64"], "images[0].outputs.platform is 'linux/amd64'"),
        ("platforms", ["linux/amd64"], "`platforms` and `images` do not list the same platforms once each"),
        ("images.1.target", "other", "images[1].target is 'other'"),
        ("index.digest", "sha256:short", "index.digest"),
        ("index.media_type", "application/vnd.oci.image.manifest.v1+json", "index.media_type"),
        ("images.1.epoch.seconds", 1, "images[1] records another commit or epoch than images[0]"),
    ],
)
def test_the_reader_refuses_an_index_that_disagrees(where: str, value: object, message: str) -> None:
    data = _edit(_index(), where, value)
    with pytest.raises(ManifestError) as e:
        IndexManifest.from_json(data, "m.json")
    assert message in e.value.message
    if where.startswith("index."):  # a shape the published schema refuses too (agreement is the reader's)
        assert schema_problems(json.loads(json.dumps(data)))
