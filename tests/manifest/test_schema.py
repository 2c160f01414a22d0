"""The manifest's dataclasses, the published JSON Schema and the written bytes agree.

Every manifest the suite builds is also checked at the end of the session (tests/conftest.py);
these tests hold the dataclasses and ``docs/reference/manifest.schema.json`` together field by field,
and pin the strict reader's errors.
"""

from __future__ import annotations

import copy
import json
import types
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest

from reprobuild.errors import ManifestError
from reprobuild.manifest import schema as m
from reprobuild.manifest.schema import Manifest, manifest_text, read_manifest
from tests.manifest.schemacheck import SAMPLE, check_manifest_file, published_schema, sample, schema_problems

#: Where each dataclass is described in the published schema (a path of keys from its root).
WHERE: dict[type, tuple[str, ...]] = {
    m.Manifest: (),
    m.Project: ("properties", "project"),
    m.Tools: ("properties", "tools"),
    m.Bytecode: ("properties", "bytecode"),
    m.Compiler: ("properties", "bytecode", "properties", "compiler"),
    m.Source: ("properties", "source"),
    m.Label: ("properties", "source", "properties", "label"),
    m.Epoch: ("properties", "epoch"),
    m.ConfigRecord: ("properties", "config"),
    m.BasePython: ("$defs", "base", "properties", "python"),
    m.Wheel: ("properties", "wheels", "items"),
    m.FileRecord: ("properties", "files", "items"),
    m.Outputs: ("properties", "outputs"),
    m.Layer: ("properties", "outputs", "properties", "layers", "items"),
    m.Attestation: ("properties", "attestations", "items"),
}
#: The base's shapes: one ``oneOf`` branch of ``$defs.base`` each.
BASES = {m.RegistryBase: 0, m.LocalBase: 1, m.EngineBase: 2, m.DebianBase: 3}


def _node(path: tuple[str, ...]) -> dict[str, Any]:
    node: Any = published_schema()
    for key in path:
        node = node[key]
    return dict(node)


def _keys(cls: type) -> set[str]:
    return {f.metadata.get("key") or f.name for f in fields(cls)}


def _required(cls: type) -> set[str]:
    """The keys every manifest has (not those added to the schema later, absent from older manifests)."""
    return {f.metadata.get("key") or f.name for f in fields(cls) if not f.metadata.get("optional")}


def _reachable(cls: type, seen: set[type]) -> set[type]:
    """Every dataclass a field of ``cls`` holds, at any depth."""
    if cls in seen:
        return seen
    seen.add(cls)
    for hint in get_type_hints(cls).values():
        stack = [hint]
        while stack:
            h = stack.pop()
            if isinstance(h, type) and is_dataclass(h):
                _reachable(h, seen)
            elif get_origin(h) in (Union, types.UnionType, tuple, dict):
                stack.extend(get_args(h))
    return seen


def test_every_dataclass_has_its_place_in_the_schema() -> None:
    assert _reachable(Manifest, set()) == set(WHERE) | set(BASES)


@pytest.mark.parametrize("cls", list(WHERE), ids=lambda c: c.__name__)
def test_dataclass_fields_are_the_schema_properties(cls: type) -> None:
    node = _node(WHERE[cls])
    assert node.get("additionalProperties") is False, "the schema must refuse unknown fields, as the reader does"
    assert _keys(cls) == set(node["properties"]), "a field is in the dataclass or in the schema, not both"
    assert _required(cls) == set(node["required"]), (
        "a field is required in the dataclass and in the schema, or in neither"
    )


@pytest.mark.parametrize("cls", list(BASES), ids=lambda c: c.__name__)
def test_base_shapes_are_the_schema_branches(
    cls: type[m.RegistryBase | m.LocalBase | m.EngineBase | m.DebianBase],
) -> None:
    base = _node(("$defs", "base"))
    branch = base["oneOf"][BASES[cls]]
    assert _keys(cls) == set(branch["propertyNames"]["enum"])
    assert _keys(cls) == set(base["required"]) | set(branch["required"])
    kinds = branch["properties"]["kind"]
    assert set(cls.KINDS) == set(kinds.get("enum") or [kinds.get("const")])


def test_the_sample_is_valid_and_round_trips() -> None:
    check_manifest_file(SAMPLE)


def test_a_built_manifest_is_valid_and_round_trips(built_golden: Path) -> None:
    written = built_golden / "build" / "cpu" / "manifest.json"
    check_manifest_file(written)
    assert read_manifest(written).outputs.layers[0].holds == "base"


REGISTRY_BASE = {
    "digest": "sha256:" + "a" * 64,
    "index_digest": "sha256:" + "b" * 64,
    "stage": None,
    "kind": "registry",
    "reference": "debian:bookworm",
}
DEBIAN_BASE = {
    "kind": "debian",
    "lock": "locks/base-bookworm-amd64.json",
    "lock_sha256": "sha256:" + "c" * 64,
    "release_sha256": "d" * 64,
    "snapshot": None,
    "suite": "bookworm",
    "reference": "debian:bookworm",
}


ATTESTATION = {
    "artifact_manifest": "sha256:" + "f" * 64,
    "file": "sbom.spdx.json",
    "media_type": "application/spdx+json",
    "sha256": "sha256:" + "1" * 64,
    "size": 1234,
}


def _variant(edit: dict[str, Any]) -> dict[str, Any]:
    data = sample()
    for dotted, value in edit.items():
        *parents, last = dotted.split(".")
        node = data
        for p in parents:
            node = node[p]
        node[last] = value
    return data


def _rebased(base: dict[str, Any]) -> dict[str, Any]:
    data = sample()
    common = {k: data["base"][k] for k in ("manifest_digest", "platform", "python")}
    data["base"] = {**common, **base}
    return data


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_rebased(REGISTRY_BASE), id="registry-base"),
        pytest.param(_rebased(DEBIAN_BASE), id="debian-base"),
        pytest.param(_variant({"project_wheel": None}), id="no-project"),
        pytest.param(
            _variant(
                {"project_wheel": {"filename": "a-1-py3-none-any.whl", "sha256": "sha256:" + "e" * 64, "size": 3}}
            ),
            id="given-wheel",
        ),
        pytest.param(
            _variant({"source.commit": None, "source.dirty": None, "source.remote": "https://git.example.org/o/a"}),
            id="outside-git",
        ),
        pytest.param(_variant({"attestations": [ATTESTATION]}), id="with-sboms"),
    ],
)
def test_shapes_the_schema_allows_read_and_write_back(data: dict[str, Any]) -> None:
    assert schema_problems(data) == []
    text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert manifest_text(Manifest.from_json(data)) == text


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            {"outputs.layers": [{**sample()["outputs"]["layers"][0], "extra": 1}]},
            r"unknown field\(s\) outputs\.layers\[0\]\.extra",
        ),
        ({"surprise": True}, r"unknown field\(s\) surprise"),
        ({"epoch": {"seconds": 1}}, r"missing field\(s\) epoch\.source"),
        ({"epoch.seconds": "1"}, r"epoch\.seconds is '1', which is not a whole number"),
        ({"epoch.seconds": True}, r"epoch\.seconds is True, which is not a whole number"),
        ({"epoch.seconds": -1}, r"epoch\.seconds is -1"),
        ({"source.dirty": "no"}, r"source\.dirty is 'no', which is not true or false"),
        ({"kind": "wheel"}, r"kind is 'wheel', which is not one of 'image'"),
        ({"base.kind": "ftp"}, r"base\.kind is 'ftp', which is not one of 'registry'"),
        ({"wheels": {}}, r"wheels is \{\}, which is not a list"),
        (
            {"outputs.layers": [{**sample()["outputs"]["layers"][0], "diff_id": "sha256:XY"}]},
            r"outputs\.layers\[0\]\.diff_id",
        ),
        ({"locks": {"../x": None}}, r"locks key is '\.\./x'"),
        ({"source.remote": "--upload-pack=touch /tmp/x"}, r"source\.remote"),
        ({"source.commit": "ab" * 20 + "\n"}, r"source\.commit .* not a full git commit id"),  # `$` let it by
        ({"source.commit": "ab" * 10}, r"source\.commit .* not a full git commit id"),
        ({"target": "../cpu"}, r"target is '\.\./cpu'"),
        ({"target": "cpu\n"}, r"target is 'cpu\\n'"),
        ({"project.path": "app\n"}, r"project\.path"),
        ({"locks": {"repro-locks/cpu.txt\n": None}}, r"locks key"),
        ({"project.path": "../elsewhere"}, r"project\.path"),
        ({"attestations": None}, r"attestations is None, which is not present, or absent altogether"),
        ({"attestations": [{**ATTESTATION, "file": "../../etc/passwd"}]}, r"attestations\[0\]\.file"),
    ],
)
def test_the_reader_names_the_field_that_does_not_fit(edit: dict[str, Any], message: str) -> None:
    data = _variant(edit)
    with pytest.raises(ManifestError, match=message) as caught:
        Manifest.from_json(data, "m.json")
    assert str(caught.value).startswith("m.json: ") and caught.value.hint


def test_a_hostile_wheel_name_is_refused_by_both() -> None:
    data = sample()
    wheel = data["wheels"][0]
    data["wheels"][0] = {**wheel, "filename": "../../" + wheel["filename"]}
    assert schema_problems(data)
    with pytest.raises(ManifestError, match=r"wheels\[0\]\.filename"):
        Manifest.from_json(copy.deepcopy(data), "m.json")


def test_another_schema_is_named_before_anything_else() -> None:
    with pytest.raises(ManifestError, match=r"unknown manifest schema 'repro-build.manifest/v9'"):
        Manifest.from_json({"schema": "repro-build.manifest/v9", "other": 1}, "m.json")
