"""``pyproject.toml``'s ``[project]``, ``[build-system]`` and ``[dependency-groups]`` (PEP 621, PEP 517/518,
PEP 735) → :class:`ProjectMeta`; with no static ``[project]`` (or dynamic dependency fields) the metadata
comes from the build backend (PEP 517 ``prepare_metadata_for_build_wheel``).

``[tool.repro-build]`` is read by :mod:`reprobuild.config`.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from reprobuild.errors import ConfigError
from reprobuild.lockdir import BUILD_LOCK, LOCKS_DIR, OLD_LOCKS_DIR, locks_dir
from reprobuild.tomlvalues import expect, get_str, str_list, str_map

#: PEP 517 §"build-system table": what a frontend assumes when pyproject.toml has no build-system.
PEP517_DEFAULT_REQUIRES = ("setuptools>=40.8.0",)
PEP517_DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"


@dataclass(frozen=True)
class ProjectMeta:
    """What ``[project]`` and ``[build-system]`` say (PEP 621, PEP 517/518, PEP 735)."""

    name: str
    version: str | None  # None when dynamic
    requires_python: str | None
    dependencies: tuple[str, ...]
    optional_dependencies: Mapping[str, tuple[str, ...]]
    dependency_groups: Mapping[str, tuple[str, ...]]  # entries as written; include-groups as `include-group:<name>`
    build_requires: tuple[str, ...]
    build_backend: str
    build_system_declared: bool
    urls: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # `project.urls`, as written
    description: str | None = None  # `project.description`
    license: str | None = None  # `project.license`: the PEP 639 expression, or a legacy table's `text`
    backend_path: tuple[str, ...] = ()
    #: True when name/version/dependencies came from the backend's metadata (PEP 517
    #: ``prepare_metadata_for_build_wheel``), not from a static ``[project]`` table.
    from_backend: bool = False

    @property
    def normalized_name(self) -> str:
        return canonicalize_name(self.name)


#: Files that make a directory a Python project when it has no pyproject.toml (PEP 517's default backend).
LEGACY_PROJECT_FILES = ("setup.py", "setup.cfg")

#: PEP 621 fields whose values repro-build reads; when one is dynamic (or ``[project]`` is absent) they all
#: come from the backend's metadata. A dynamic version alone does not need the backend.
_METADATA_FIELDS = {"dependencies", "optional-dependencies", "requires-python"}


def read_pyproject(root: Path) -> dict[str, Any]:
    """Parse ``root/pyproject.toml`` into plain Python data.

    A project with only ``setup.py``/``setup.cfg`` reads as an empty pyproject (PEP 517 then names
    setuptools' legacy backend).
    """
    path = root / "pyproject.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        if any((root / name).is_file() for name in LEGACY_PROJECT_FILES):
            return {}
        raise ConfigError(
            f"no pyproject.toml, setup.py or setup.cfg in {root}",
            hint="run repro-build in a Python project, or pass `--project DIR`",
        ) from e
    return _parse_toml(text)


def _parse_toml(text: str) -> dict[str, Any]:
    """The TOML document ``text`` (a pyproject.toml) as plain Python data.

    The standard library's tomllib reads it: every build reads the pyproject, and tomllib takes a
    fraction of tomlkit's import and parse time. A document tomllib refuses is handed to tomlkit,
    whose error names the line and column (and whose reading stands, should it accept the document).
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        pass
    import tomlkit
    import tomlkit.exceptions

    try:
        doc = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as e:
        raise ConfigError(
            f"pyproject.toml is not valid TOML: {e}", hint="fix the syntax at the line and column shown"
        ) from e
    data: dict[str, Any] = doc.unwrap()
    return data


def project_meta(data: Mapping[str, Any]) -> ProjectMeta:
    """``[project]`` + ``[build-system]``; with no ``[project]`` (or dynamic dependency fields) the
    metadata fields are left for :func:`_backend_project` to fill in."""
    project = data.get("project")
    if project is None:
        project = {"name": "", "dynamic": ["version", *sorted(_METADATA_FIELDS)]}
    expect(project, dict, "project", "a table")
    if "name" not in project and "name" in project.get("dynamic", []):
        raise ConfigError("`project.name` must not be dynamic (PEP 621)", hint='set it: `name = "my-app"`')
    name = project.get("name")
    dynamic = str_list(project, "dynamic", "project")
    if not isinstance(name, str) or not (name or data.get("project") is None):
        raise ConfigError("`project.name` must be a non-empty string", hint='e.g. `name = "my-app"`')
    version = get_str(project, "version", "project")
    if version is None and "version" not in dynamic:
        raise ConfigError(
            "`project.version` is missing and not listed in `project.dynamic`",
            hint='add `version = "0.1.0"` to `[project]`',
        )
    requires_python = get_str(project, "requires-python", "project")
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier as e:
            raise ConfigError(f"`project.requires-python` is not a valid specifier: {e}") from e
    deps = str_list(project, "dependencies", "project")
    for i, dep in enumerate(deps):
        _check_requirement(dep, f"project.dependencies[{i}]")
    optional: dict[str, tuple[str, ...]] = {}
    raw_opt = project.get("optional-dependencies", {})
    expect(raw_opt, dict, "project.optional-dependencies", "a table of arrays")
    for extra in raw_opt:
        optional[str(extra)] = str_list(raw_opt, extra, "project.optional-dependencies")
        for i, dep in enumerate(optional[str(extra)]):
            _check_requirement(dep, f"project.optional-dependencies.{extra}[{i}]")
    groups_raw = data.get("dependency-groups", {})
    expect(groups_raw, dict, "dependency-groups", "a table")
    build = data.get("build-system")
    if build is None:
        build_requires: tuple[str, ...] = PEP517_DEFAULT_REQUIRES
        backend, declared = PEP517_DEFAULT_BACKEND, False
    else:
        expect(build, dict, "build-system", "a table")
        if "requires" not in build:
            raise ConfigError(
                "`build-system.requires` is missing",
                hint='e.g. `requires = ["hatchling"]` (PEP 518 makes it mandatory in `[build-system]`)',
            )
        build_requires = str_list(build, "requires", "build-system")
        for i, dep in enumerate(build_requires):
            _check_requirement(dep, f"build-system.requires[{i}]")
        backend = get_str(build, "build-backend", "build-system") or PEP517_DEFAULT_BACKEND
        declared = True
    backend_path = str_list(build, "backend-path", "build-system") if build is not None else ()
    return ProjectMeta(
        name=name,
        version=version,
        requires_python=requires_python,
        dependencies=deps,
        optional_dependencies=MappingProxyType(optional),
        dependency_groups=MappingProxyType(_groups(groups_raw)),
        build_requires=build_requires,
        build_backend=backend,
        build_system_declared=declared,
        urls=MappingProxyType(str_map(project, "urls", "project")),
        description=get_str(project, "description", "project"),
        license=_license(project.get("license")),
        backend_path=backend_path,
        from_backend=data.get("project") is None or bool(_METADATA_FIELDS & set(dynamic)),
    )


def _license(raw: Any) -> str | None:
    """PEP 639 ``license = "EXPR"``, or the ``text`` of a legacy ``license = {text = ...}`` table."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict) and isinstance(raw.get("text"), str):
        return str(raw["text"])
    return None


def _backend_project(root: Path, project: ProjectMeta, python: str) -> ProjectMeta:
    """``project`` with name, version, dependencies, extras and Requires-Python from the backend's
    metadata (:mod:`reprobuild.pep517`), as a frontend would see them."""
    from reprobuild.pep517 import Backend, project_hooks
    from reprobuild.wheel.source import snapshot

    backend = Backend(project.build_backend, project.backend_path, project.build_requires)
    tree = snapshot(root, allow_dirty=True)
    lock = locks_dir(root) / BUILD_LOCK
    key = (str(root), python, tree.commit, backend, project.name, _stat_key(root, [f.path for f in tree.files]))
    if key in _BACKEND_CACHE:
        return _BACKEND_CACHE[key]
    with project_hooks(root, python, backend, lock=lock) as (env, source):
        _sdist_reqs, wheel_reqs = env.requires(source)
        env.install(wheel_reqs)
        meta = env.metadata(source)
    optional: dict[str, tuple[str, ...]] = dict.fromkeys(meta.provides_extra, ())
    if project.name and canonicalize_name(project.name) != canonicalize_name(meta.name):
        raise ConfigError(
            f"`project.name = {project.name!r}` but the backend `{project.build_backend}` names the project "
            f"{meta.name!r}",
            hint="make the two agree",
        )
    _BACKEND_CACHE[key] = replace(
        project,
        name=project.name or meta.name,
        version=project.version or meta.version,
        requires_python=meta.requires_python,
        # Requires-Dist as the backend wrote it: extras are `extra == "…"` markers, which the lock
        # step hands to uv unchanged (the extra's own list stays empty).
        dependencies=meta.requires_dist,
        optional_dependencies=MappingProxyType(optional),
    )
    return _BACKEND_CACHE[key]


#: Backend metadata already read in this process, by project, Python, commit and file sizes/mtimes.
_BACKEND_CACHE: dict[tuple[object, ...], ProjectMeta] = {}


def _stat_key(root: Path, paths: Iterable[str]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for rel in [*paths, f"{LOCKS_DIR}/{BUILD_LOCK}", f"{OLD_LOCKS_DIR}/{BUILD_LOCK}"]:
        try:
            st = (root / rel).lstat()
        except OSError:
            continue
        out.append((rel, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _groups(raw: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """PEP 735 groups: requirement strings or ``{include-group = "name"}`` tables."""
    out: dict[str, tuple[str, ...]] = {}
    for name, items in raw.items():
        path = f"dependency-groups.{name}"
        expect(items, list, path, "an array")
        entries: list[str] = []
        for i, item in enumerate(items):
            if isinstance(item, dict) and set(item) == {"include-group"} and isinstance(item["include-group"], str):
                if item["include-group"] not in raw:
                    raise ConfigError(f"`{path}[{i}]` includes an undefined group {item['include-group']!r}")
                entries.append(f"include-group:{item['include-group']}")
                continue
            expect(item, str, f"{path}[{i}]", 'a requirement string or `{include-group = "name"}`')
            _check_requirement(item, f"{path}[{i}]")
            entries.append(item)
        out[str(name)] = tuple(entries)
    return out


def _check_requirement(text: str, path: str) -> None:
    try:
        Requirement(text)
    except InvalidRequirement as e:
        raise ConfigError(f"`{path}` is not a valid PEP 508 requirement: {text!r} ({e})") from e


def default_python(requires_python: str | None) -> str:
    """The running interpreter's ``X.Y`` if ``requires-python`` allows it, else the lowest allowed minor."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if requires_python is None:
        return running
    spec = SpecifierSet(requires_python)
    if spec.contains(f"{running}.0", prereleases=True) or spec.contains(running, prereleases=True):
        return running
    for minor in range(8, 20):
        candidate = f"3.{minor}"
        if spec.contains(f"{candidate}.0", prereleases=True) or spec.contains(candidate, prereleases=True):
            return candidate
    raise ConfigError(
        f"`project.requires-python = {requires_python!r}` allows no Python 3 version",
        hint='set the version explicitly: `[tool.repro-build] python = "3.11"`',
    )


def complete_project(root: Path, data: Mapping[str, Any], project: ProjectMeta, python: str | None) -> ProjectMeta:
    """``project`` with the backend's metadata where ``[project]`` does not give it statically."""
    if (
        "project" not in data
        and project.build_backend.startswith("setuptools")
        and not any((root / name).is_file() for name in LEGACY_PROJECT_FILES)
    ):
        raise ConfigError(
            "pyproject.toml has no `[project]` table, and there is no setup.py or setup.cfg to hold the metadata",
            hint='add PEP 621 metadata:\n\n    [project]\n    name = "my-app"\n    version = "0.1.0"',
        )
    if project.from_backend:
        return _backend_project(root, project, python or default_python(None))
    return project
