"""The build manifest's schema, ``repro-build.manifest/v1``, as frozen dataclasses: defined here only.

``build/<target>/manifest.json`` is written from a :class:`Manifest` (:func:`write_manifest`) and read into
one (:func:`read_manifest`); ``verify``, ``verify --image`` and the report use the typed fields, never the
raw JSON. Reading is strict and treats the file as hostile input: an unknown or missing field, a value of
the wrong type, or a name, digest, commit or path that :mod:`reprobuild.manifest.validate` refuses is one
:class:`ManifestError` naming the file and the field (``wheels[2].filename``), before anything is used.

Each dataclass field is a JSON key of the same name (``key=`` where JSON spells it otherwise, e.g.
``site-packages``); tuples are JSON arrays. Sections whose shape another module owns and that the
manifest only carries (the compressor's facts, the determinism policy, the target's settings, the wheel
step's record, the CUDA versions) are :data:`JsonObject`. The published JSON Schema,
``docs/reference/manifest.schema.json``, describes the same fields; the tests validate every manifest
they write against it and check that its fields are exactly these.
"""

from __future__ import annotations

import functools
import json
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeAlias, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from reprobuild.errors import ManifestError
from reprobuild.fsutil import atomic_write_text, human_json_text
from reprobuild.manifest.validate import (
    HINT,
    commit_id,
    project_path,
    refuse,
    sha256_hex,
    target_name,
    wheel_filename,
)

SCHEMA = "repro-build.manifest/v1"
MANIFEST_NAME = "manifest.json"

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
#: A JSON object the manifest carries whole (its shape is owned by the module that makes it).
JsonObject: TypeAlias = dict[str, JsonValue]

#: Checks a value once its type is right: ``(value, manifest path, field name)``; raises ManifestError.
Check = Callable[[Any, Path, str], object]
#: ``repro-locks/<file>``, or ``locks/<file>`` for a project still read from the old directory.
_LOCK_KEY = re.compile(r"^(repro-)?locks/[^/\x00-\x1f]+\Z")


def _meta(*, key: str | None = None, check: Check | None = None, optional: bool = False) -> dict[str, object]:
    """A field's metadata: its JSON key (default: the field's name), the check its value must pass, and
    whether the key may be absent (a section added to the schema later: ``None`` in the dataclass)."""
    return {"key": key, "check": check, "optional": optional}


def _digest(value: Any, path: Path, where: str) -> None:
    if value is not None:
        sha256_hex(value, path=path, field=where)


def _bare_digest(value: Any, path: Path, where: str) -> None:
    if value is not None:
        sha256_hex(value, path=path, field=where, prefixed=False)


def _commit(value: Any, path: Path, where: str) -> None:
    if value is not None:
        commit_id(value, path=path, field=where)


def _remote(value: Any, path: Path, where: str) -> None:
    # Handed to git as data only (`git remote add -- origin URL`); never an option, never two lines.
    if value is not None and (value.startswith("-") or "\n" in value):
        raise refuse(path, where, value, "a repository URL")


def _not_negative(value: Any, path: Path, where: str) -> None:
    if value is not None and value < 0:
        raise refuse(path, where, value, "a whole number, 0 or more")


def _not_empty(value: Any, path: Path, where: str) -> None:
    if not value:
        raise refuse(path, where, value, "a name")


def _locks(value: Any, path: Path, where: str) -> None:
    for name, digest in value.items():
        if not _LOCK_KEY.match(name):
            raise refuse(path, f"{where} key", name, "a file under `repro-locks/` (or the old `locks/`)")
        _digest(digest, path, f"{where}[{name!r}]")


@dataclass(frozen=True)
class Project:
    name: str = field(metadata=_meta(check=_not_empty))
    version: str | None
    #: The project directory relative to the top of its git repository ("" at the top).
    path: str = field(metadata=_meta(check=lambda v, p, w: project_path(v, path=p, field=w)))


@dataclass(frozen=True)
class Tools:
    repro_build: str = field(metadata=_meta(key="repro-build"))
    uv: str
    #: The interpreter that ran repro-build, not the image's.
    python: str


@dataclass(frozen=True)
class Compiler:
    implementation: str
    version: str
    cache_tag: str


@dataclass(frozen=True)
class Bytecode:
    mode: Literal["none", "unchecked-hash"]
    compiler: Compiler


@dataclass(frozen=True)
class Label:
    """The image's ``org.opencontainers.image.source`` label and where it came from."""

    url: str | None
    origin: str | None = field(metadata=_meta(key="from"))
    note: str | None


@dataclass(frozen=True)
class Source:
    commit: str | None = field(metadata=_meta(check=_commit))
    dirty: bool | None
    remote: str | None = field(metadata=_meta(check=_remote))
    label: Label


@dataclass(frozen=True)
class Epoch:
    seconds: int = field(metadata=_meta(check=_not_negative))
    source: Literal["env", "config", "git"]


@dataclass(frozen=True)
class ConfigRecord:
    pyproject_sha256: str | None = field(metadata=_meta(check=_digest))
    dockerfile_base_sha256: str | None = field(metadata=_meta(check=_digest))
    #: The target as ``repro-build config`` prints it.
    target: JsonObject


@dataclass(frozen=True)
class BasePython:
    """What inspecting the base's layers found."""

    glibc: str | None
    interpreter: str
    os: str | None
    python: str
    site_packages: str = field(metadata=_meta(key="site-packages"))


@dataclass(frozen=True)
class _Base:
    #: The ``kind`` values this shape records.
    KINDS: ClassVar[tuple[str, ...]] = ()

    kind: str
    manifest_digest: str = field(metadata=_meta(check=_digest))
    platform: str
    reference: str
    python: BasePython


@dataclass(frozen=True)
class RegistryBase(_Base):
    KINDS: ClassVar[tuple[str, ...]] = ("registry",)

    digest: str = field(metadata=_meta(check=_digest))
    index_digest: str | None = field(metadata=_meta(check=_digest))
    stage: str | None


@dataclass(frozen=True)
class LocalBase(_Base):
    KINDS: ClassVar[tuple[str, ...]] = ("oci-layout", "docker-archive")

    digest: str | None = field(metadata=_meta(check=_digest))
    index_digest: str | None = field(metadata=_meta(check=_digest))


@dataclass(frozen=True)
class EngineBase(_Base):
    KINDS: ClassVar[tuple[str, ...]] = ("docker-daemon",)

    #: The pinned image ID (the config digest).
    digest: str = field(metadata=_meta(check=_digest))


@dataclass(frozen=True)
class DebianBase(_Base):
    KINDS: ClassVar[tuple[str, ...]] = ("debian",)

    lock: str
    lock_sha256: str = field(metadata=_meta(check=_digest))
    #: Bare hex, without the ``sha256:`` prefix.
    release_sha256: str | None = field(metadata=_meta(check=_bare_digest))
    snapshot: str | None
    suite: str


Base: TypeAlias = RegistryBase | LocalBase | EngineBase | DebianBase


@dataclass(frozen=True)
class Wheel:
    """A third-party wheel installed in the image."""

    name: str
    version: str
    filename: str = field(metadata=_meta(check=lambda v, p, w: wheel_filename(v, path=p, field=w)))
    #: ``sha256:<hex>`` (bare hex in manifests of older versions).
    sha256: str = field(metadata=_meta(check=_bare_digest))
    size: int | None = field(metadata=_meta(check=_not_negative))
    #: Index into ``outputs.layers``.
    layer: int = field(metadata=_meta(check=_not_negative))


@dataclass(frozen=True)
class FileRecord:
    """A data file (the target's ``files``) and the layer that holds it."""

    layer: int = field(metadata=_meta(check=_not_negative))
    path: str
    sha256: str = field(metadata=_meta(check=_digest))
    size: int = field(metadata=_meta(check=_not_negative))
    source: str


@dataclass(frozen=True)
class Attestation:
    """An SBOM written beside the image and attached to it as an OCI artifact."""

    artifact_manifest: str = field(metadata=_meta(check=_digest))
    file: Literal["sbom.spdx.json", "sbom.cdx.json"]
    media_type: Literal["application/spdx+json", "application/vnd.cyclonedx+json"]
    sha256: str = field(metadata=_meta(check=_digest))
    size: int = field(metadata=_meta(check=_not_negative))


@dataclass(frozen=True)
class Layer:
    digest: str = field(metadata=_meta(check=_digest))
    diff_id: str = field(metadata=_meta(check=_digest))
    size: int = field(metadata=_meta(check=_not_negative))
    media_type: str
    #: "base", "wheel <name>", "third-party wheels", "project <name>", "file <path>" or "app".
    holds: str
    distributions: tuple[str, ...]


@dataclass(frozen=True)
class Outputs:
    manifest_digest: str = field(metadata=_meta(check=_digest))
    manifest_media_type: str
    config_digest: str = field(metadata=_meta(check=_digest))
    image_id: str = field(metadata=_meta(check=_digest))
    repo_tag: str
    platform: str
    layers: tuple[Layer, ...]
    env: tuple[str, ...]


def require_schema(data: object, where: Path) -> None:
    """Refuse ``data`` (a parsed manifest of either kind) unless its ``schema`` is the one this version reads."""
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema != SCHEMA:
        raise ManifestError(
            f"{where}: unknown manifest schema {schema!r} (this repro-build reads {SCHEMA!r})",
            hint="use the repro-build version that wrote it (see its `tools` section)",
        )


class Document:
    """What a manifest file holds at its top (:class:`Manifest`, or
    :class:`~reprobuild.manifest.indexschema.IndexManifest`): written as JSON values, read strictly."""

    def to_json(self) -> JsonObject:
        """The document as JSON values (written canonically by :func:`human_json_text`)."""
        out = _dump(self)
        assert isinstance(out, dict)
        return out

    @classmethod
    def from_json(cls, data: object, path: Path | str = "the manifest") -> Self:
        """Read and check ``data`` (parsed JSON); ``path`` names the manifest in errors."""
        where = Path(str(path))
        require_schema(data, where)
        document = read_section(cls, data, where)
        document.check(where)
        return document

    def check(self, path: Path) -> None:
        """What holds between the fields of a document once each is read (none here; ``path``: for errors)."""


@dataclass(frozen=True)
class Manifest(Document):
    """``build/<target>/manifest.json``: every input and output of one image build."""

    schema: str
    kind: Literal["image"]
    target: str = field(metadata=_meta(check=lambda v, p, w: target_name(v, path=p, field=w)))
    project: Project
    tools: Tools
    compressor: JsonObject
    bytecode: Bytecode
    source: Source
    epoch: Epoch
    config: ConfigRecord
    #: sha256 of each lock file the build used, by its path relative to the project (None: absent).
    locks: dict[str, str | None] = field(metadata=_meta(check=_locks))
    base: Base
    wheels: tuple[Wheel, ...]
    #: None with ``image --no-project``; ``filename``/``sha256``/``size`` with ``image --wheel FILE``;
    #: else the wheel step's record.
    project_wheel: JsonObject | None
    determinism: JsonObject
    cuda: JsonObject | None
    files: tuple[FileRecord, ...]
    outputs: Outputs
    #: None: a manifest written before SBOMs existed (the key is absent).
    attestations: tuple[Attestation, ...] | None = field(default=None, metadata=_meta(optional=True))

    def project_wheel_sha256(self) -> str | None:
        """The project wheel's ``sha256:<hex>``, in either recorded form; None without one."""
        record = self.project_wheel or {}
        if "sha256" in record:
            return str(record["sha256"])
        artifacts = record.get("artifacts")
        for artifact in artifacts if isinstance(artifacts, list) else []:
            if isinstance(artifact, dict) and artifact.get("kind") == "wheel":
                return str(artifact.get("sha256"))
        return None


def _key(f: Any) -> str:
    return str(f.metadata.get("key") or f.name)


def to_json_value(value: object) -> JsonValue:
    """A manifest value (a section dataclass, a tuple of them, or plain JSON) as it is written."""
    return _dump(value)


def _dump(value: object) -> JsonValue:
    if is_dataclass(value) and not isinstance(value, type):
        return {
            _key(f): _dump(getattr(value, f.name))
            for f in fields(value)
            if not (f.metadata.get("optional") and getattr(value, f.name) is None)
        }
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _dump(v) for k, v in value.items()}
    assert value is None or isinstance(value, bool | int | float | str), value
    return value


T = TypeVar("T")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a section's dataclass: resolving them takes most of a manifest's reading
    time, and a dataclass's never change. Read only."""
    return get_type_hints(cls)


def read_section(cls: type[T], data: object, path: Path, where: str = "") -> T:
    """``data`` read strictly as the dataclass ``cls`` (``where``: its field name, for errors)."""
    if not isinstance(data, dict):
        raise refuse(path, where or "the manifest", data, "a JSON object")
    hints = _hints(cast(type, cls))
    by_key = {_key(f): f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(by_key))
    if unknown:
        names = ", ".join(_join(where, str(k)) for k in unknown)
        raise ManifestError(f"{path}: unknown field(s) {names}", hint=HINT)
    missing = [k for k, f in by_key.items() if k not in data and f.default is MISSING]
    if missing:
        names = ", ".join(_join(where, k) for k in missing)
        raise ManifestError(f"{path}: missing field(s) {names}", hint=HINT)
    values = {}
    for key, f in by_key.items():
        if key not in data:
            continue  # an optional field (checked above): its default
        name = _join(where, key)
        if f.metadata.get("optional") and data[key] is None:
            raise refuse(path, name, None, "present, or absent altogether")
        value = _read(hints[f.name], data[key], path, name)
        check: Check | None = f.metadata.get("check")
        if check is not None:
            check(value, path, name)
        values[f.name] = value
    return cls(**values)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


_SCALARS: Mapping[object, tuple[type, ...]] = {str: (str,), int: (int,), bool: (bool,), float: (int, float)}
_NAMES = {str: "a string", int: "a whole number", bool: "true or false", float: "a number"}


def _read(hint: Any, data: object, path: Path, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if data is None and type(None) in options:
            return None
        options = tuple(o for o in options if o is not type(None))
        if all(is_dataclass(o) for o in options):
            return _read_variant(options, data, path, where)
        if len(options) == 1:
            return _read(options[0], data, path, where)
        raise TypeError(f"no reader for {hint}")  # a schema made of something this reader does not know
    if hint in _SCALARS:
        if isinstance(data, _SCALARS[hint]) and (hint is bool or not isinstance(data, bool)):
            return data
        raise refuse(path, where, data, _NAMES[hint])
    if origin is Literal:
        if data in get_args(hint) and isinstance(data, str):
            return data
        raise refuse(path, where, data, "one of " + ", ".join(repr(a) for a in get_args(hint)))
    if origin is tuple:
        if not isinstance(data, list):
            raise refuse(path, where, data, "a list")
        item = get_args(hint)[0]
        return tuple(_read(item, v, path, f"{where}[{i}]") for i, v in enumerate(data))
    if origin is dict:
        if not isinstance(data, dict):
            raise refuse(path, where, data, "a JSON object")
        value_hint = get_args(hint)[1]
        if {bool, int, float, str} <= set(get_args(value_hint)):  # JsonValue (its inner references resolved)
            return data  # carried whole; json.loads made it, so it is JSON
        return {k: _read(value_hint, v, path, f"{where}[{k!r}]") for k, v in data.items()}
    if isinstance(hint, type) and is_dataclass(hint):
        return read_section(hint, data, path, where)
    raise TypeError(f"no reader for {hint}")


def read_base(data: object, path: Path, where: str = "base") -> Base:
    """A ``base`` section, of the shape its ``kind`` records."""
    base: Base = _read(Base, data, path, where)
    return base


def _read_variant(options: tuple[Any, ...], data: object, path: Path, where: str) -> Any:
    """One of several dataclasses, chosen by the ``kind`` field."""
    kind = data.get("kind") if isinstance(data, dict) else None
    for option in options:
        if kind in option.KINDS:
            return read_section(option, data, path, where)
    kinds = [k for option in options for k in option.KINDS]
    raise refuse(path, _join(where, "kind"), kind, "one of " + ", ".join(repr(k) for k in kinds))


def read_manifest(path: Path) -> Manifest:
    """Read ``path`` and check every field (see the module docstring)."""
    return parse_manifest(read_document(path), path)


def read_document(path: Path) -> bytes:
    """The bytes of the manifest file ``path``; a :class:`ManifestError` when there are none to read."""
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise ManifestError(f"{path} does not exist", hint="build first: `repro-build image`") from e
    except OSError as e:
        raise ManifestError(f"{path} cannot be read: {e}", hint="check the path and its permissions") from e


def parse_json(data: bytes, where: Path | str) -> object:
    """The JSON value of a manifest's bytes (``where`` names it in errors: a file, or where the bytes came
    from); its fields are not checked yet."""
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ManifestError(f"{where} is not valid JSON: {e}", hint="was it edited by hand?") from e


def parse_manifest(data: bytes, where: Path | str) -> Manifest:
    """A manifest from its bytes (``where`` names it in errors: a file, or where the bytes came from)."""
    return Manifest.from_json(parse_json(data, where), where)


def manifest_text(manifest: Manifest) -> str:
    """The manifest's bytes: canonical JSON (sorted keys, two-space indent, trailing newline)."""
    return human_json_text(manifest.to_json())


def write_manifest(path: Path, manifest: Manifest) -> None:
    atomic_write_text(path, manifest_text(manifest))
