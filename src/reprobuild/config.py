"""``[tool.repro-build]`` + ``[project]`` + ``Dockerfile.base`` → one frozen :class:`Config`.

Every error names the full TOML path (``tool.repro-build.targets.cuda.platform``), says what was
expected, and ends with a hint; unknown keys are errors with a did-you-mean. A project with no
``[tool.repro-build]`` table gets working defaults: one ``cpu`` target on the embedded Debian base.

The Python version, architecture and manylinux tag a project leaves unset come from its lock once one
is written (:mod:`reprobuild.lockdefaults`); the running host supplies them only for the first lock.
"""

from __future__ import annotations

import difflib
import platform as host_platform
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from packaging.specifiers import SpecifierSet

from reprobuild.determinism.flagsets import FLAG_SETS
from reprobuild.determinism.policy import MAX_SEED, Policy, Switches, effective_env
from reprobuild.dockerfile_base import FILENAME as DOCKERFILE_BASE
from reprobuild.dockerfile_base import DockerfileBase, parse_dockerfile_base
from reprobuild.errors import ConfigError
from reprobuild.lockdefaults import LockedDefaults, read_locked_defaults
from reprobuild.lockdir import LOCKS_DIR, locks_dir, write_dir
from reprobuild.manifest.validate import is_target_name
from reprobuild.oci.compress import LEVELS, Compressor
from reprobuild.oci.digest import DIGEST_RE
from reprobuild.oci.location import parse_location
from reprobuild.oci.reference import Reference, parse_reference
from reprobuild.platforms import ARCHES, host_arch
from reprobuild.pyproject import ProjectMeta, complete_project, default_python, project_meta, read_pyproject
from reprobuild.tomlvalues import check_defined, check_keys, did_you_mean, expect, get_str, str_list, str_map

TOOL = "tool.repro-build"

DEFAULT_DEBIAN_SUITE = "bookworm"
#: glibc 2.28 (manylinux_2_28) is older than every supported Debian/Ubuntu base; the image step
#: checks that the base's glibc is at least this.
DEFAULT_MANYLINUX = "manylinux_2_28"
DEFAULT_SPLIT = ("torch", "nvidia-*", "triton", "tensorflow*", "jaxlib")

_PYTHON_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?\Z")
_MANYLINUX_RE = re.compile(r"^manylinux_2_(\d+)\Z")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")

#: ``docker-archive`` is any archive (a ``docker save`` tar or an OCI archive: one reader takes both).
BaseKind = Literal["registry", "oci-layout", "docker-archive", "docker-daemon", "debian"]
Accelerator = Literal["none", "cuda"]
#: ``none``: no .pyc in the image (but the hook's); ``unchecked-hash`` (the default, as pip compiles byte-code
#: by default): PEP 552 hash-based .pyc compiled for the in-image path, never re-validated against the source
#: at run time. Measured on the bundled example: a container prints its first line about 1.4x sooner with it.
Bytecode = Literal["none", "unchecked-hash"]


@dataclass(frozen=True)
class LayerPolicy:
    """How installed wheels are split into layers."""

    split: tuple[str, ...] = DEFAULT_SPLIT
    threshold_mb: int = 50
    budget: int = 32


@dataclass(frozen=True)
class BaseSpec:
    """A target's base: a registry reference, a local layout/archive, an engine image, or the embedded Debian base."""

    kind: BaseKind
    text: str
    reference: Reference | None = None
    path: str | None = None
    digest: str | None = None
    suite: str | None = None
    stage: str | None = None  # the Dockerfile.base stage it came from
    tag: str | None = None  # an archive's image, when it holds several

    @property
    def pin(self) -> str:
        """The identity that must change for the base to change (recorded in the lock inputs)."""
        if self.kind == "debian":
            return f"debian:{self.suite}"
        return f"{self.text}"


@dataclass(frozen=True)
class Target:
    """Base + Python deps (+extras/groups) + env + platform: one image."""

    name: str
    base: BaseSpec
    python: str
    os: str
    arch: str
    manylinux: str
    extras: tuple[str, ...]
    groups: tuple[str, ...]
    flags: tuple[str, ...]
    env: Mapping[str, str]
    layers: LayerPolicy
    accelerator: Accelerator
    binary_only: bool
    bytecode: Bytecode = "unchecked-hash"
    #: An argv run in the loaded image (``--network none``, as the image's user) by ``image --smoke``.
    smoke: tuple[str, ...] = ()
    env_unset: tuple[str, ...] = ()  # `env = { NAME = false }`: removed from the image's env
    seed: int | None = None  # `seed = N`; None for "off" or unset
    switches: Switches = field(default_factory=Switches)
    files: tuple[tuple[str, str], ...] = ()  # (project-relative path, absolute image path), sorted by image path
    #: ``[tool.repro-build] env``: the project-wide layer under the target's own ``env`` (as ``env``/``env_unset``).
    project_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    project_env_unset: tuple[str, ...] = ()
    #: ``platforms = [...]``: the architectures of a multi-platform target, in the configured order (which
    #: is the order of the index's manifests); empty for a one-platform target (``platform``). ``arch`` is
    #: then the first of them.
    platforms: tuple[str, ...] = ()
    #: True for one platform of a multi-platform target (see :meth:`per_platform`): its lock is
    #: ``<target>.<arch>.txt``, not ``<target>.txt``.
    in_index: bool = False

    @property
    def multi_platform(self) -> bool:
        return bool(self.platforms)

    @property
    def lock_name(self) -> str:
        """The name of this target's lock in ``repro-locks/``: ``<target>.txt``, or ``<target>.<arch>.txt``
        for one platform of a multi-platform target (target names hold no dot, so the two never clash)."""
        return f"{self.name}.{self.arch}.txt" if self.in_index else f"{self.name}.txt"

    def per_platform(self) -> list[Target]:
        """The one-platform targets this target builds: itself, or one per entry of ``platforms``."""
        if not self.platforms:
            return [self]
        return [replace(self, arch=arch, platforms=(), in_index=True) for arch in self.platforms]

    def for_arch(self, arch: str) -> Target:
        """The one-platform target of ``arch`` (``amd64``/``arm64``) this target builds."""
        for target in self.per_platform():
            if target.arch == arch:
                return target
        raise ConfigError(
            f"target {self.name!r} is not built for linux/{arch}",
            hint=f"its platforms: {', '.join(t.platform for t in self.per_platform())}",
        )

    @property
    def policy(self) -> Policy:
        """The determinism policy an image of this target carries (before the CUDA facts of its wheels are
        known: :func:`reprobuild.determinism.cudapolicy.with_cuda` adds them)."""
        layers = [(self.project_env, self.project_env_unset), (self.env, self.env_unset)]
        user_env, unset = effective_env(layers)
        return Policy(
            self.flags,
            cuda=self.accelerator == "cuda",
            seed=self.seed,
            switches=self.switches,
            user_env=user_env,
            unset=unset,
        )

    @property
    def platform(self) -> str:
        return f"{self.os}/{self.arch}"

    @property
    def python_platform(self) -> str:
        """uv's ``--python-platform`` triple, e.g. ``x86_64-manylinux_2_28``."""
        return f"{ARCHES[self.arch]}-{self.manylinux}"

    @property
    def uv_platform_args(self) -> list[str]:
        """The uv options that resolve or install for this target's interpreter and platform, not the host's."""
        return ["--python-version", self.python, "--python-platform", self.python_platform]


@dataclass(frozen=True)
class DebianSettings:
    """``[tool.repro-build.debian]``: the embedded base's mirror and extra packages."""

    mirror: str | None = None
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """The effective configuration of one project."""

    root: Path
    project: ProjectMeta
    python: str
    epoch_policy: str | int
    exclude_newer: str | None
    compression: Compressor  # how new layers are compressed; part of the output format
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: Mapping[str, str]
    workdir: str
    user: str | None
    builder: str | None
    debian: DebianSettings
    targets: Mapping[str, Target]
    dockerfile_base: DockerfileBase | None
    explicit: bool = field(default=True)  # False when [tool.repro-build] is absent
    #: The values used for settings the project leaves unset (``python``, ``platform``, ``manylinux``),
    #: each ``{"value": ..., "from": "lock" | "host" | "repro-build"}``; ``lock`` records the values.
    defaults: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    env_unset: tuple[str, ...] = ()  # top-level `env = { NAME = false }`
    cache: str | None = None  # a registry repository sharing built layers (`image --cache REF`)
    #: The file holding the registry cache's fleet secret (image/cachesecret.py); relative to the project.
    cache_secret_file: str | None = None

    @property
    def pyproject(self) -> Path:
        return self.root / "pyproject.toml"

    @property
    def locks_dir(self) -> Path:
        """Where the locks are read from (:func:`reprobuild.lockdir.locks_dir`)."""
        return locks_dir(self.root)

    @property
    def locks_write_dir(self) -> Path:
        """Where ``repro-build lock`` writes them (:func:`reprobuild.lockdir.write_dir`)."""
        return write_dir(self.root)

    def lock_targets(self) -> list[Target]:
        """Every one-platform target, in configuration order: one per platform of a multi-platform target."""
        return [t for target in self.targets.values() for t in target.per_platform()]

    def target(self, name: str) -> Target:
        if name not in self.targets:
            raise ConfigError(
                f"no target named {name!r}",
                hint=f"targets in {TOOL}.targets: {', '.join(sorted(self.targets)) or '(none)'}",
            )
        return self.targets[name]

    def to_dict(self) -> dict[str, Any]:
        """The effective configuration as plain data (what `repro-build config` prints)."""
        return {
            "root": str(self.root),
            "configured": self.explicit,
            "defaults": {k: dict(v) for k, v in sorted(self.defaults.items())},
            "project": {
                "name": self.project.name,
                "version": self.project.version,
                "requires-python": self.project.requires_python,
                "dependencies": list(self.project.dependencies),
                "optional-dependencies": {k: list(v) for k, v in self.project.optional_dependencies.items()},
                "dependency-groups": {k: list(v) for k, v in self.project.dependency_groups.items()},
                "build-system": {
                    "requires": list(self.project.build_requires),
                    "build-backend": self.project.build_backend,
                    "declared": self.project.build_system_declared,
                },
            },
            "python": self.python,
            "source-date-epoch": self.epoch_policy,
            "exclude-newer": self.exclude_newer,
            "compression": {"algorithm": self.compression.algorithm, "level": self.compression.level},
            "entrypoint": list(self.entrypoint),
            "cmd": list(self.cmd),
            "env": {**dict(self.env), **dict.fromkeys(self.env_unset, False)},
            "workdir": self.workdir,
            "user": self.user,
            "builder": self.builder,
            "cache": self.cache,
            "cache-secret-file": self.cache_secret_file,
            "debian": {"mirror": self.debian.mirror, "packages": list(self.debian.packages)},
            "targets": {name: target_record(t) for name, t in self.targets.items()},
        }


def target_record(t: Target) -> dict[str, Any]:
    """A target's effective settings as plain data (``repro-build config``, the build manifest's ``config``)."""
    return {
        "base": {
            "kind": t.base.kind,
            "text": t.base.text,
            "stage": t.base.stage,
            "digest": t.base.digest,
        },
        "python": t.python,
        "platform": t.platform,
        **({"platforms": [f"{t.os}/{a}" for a in t.platforms]} if t.platforms else {}),
        "manylinux": t.manylinux,
        "python-platform": t.python_platform,
        "extras": list(t.extras),
        "groups": list(t.groups),
        "flags": list(t.flags),
        "env": {**dict(t.env), **dict.fromkeys(t.env_unset, False)},
        "seed": t.seed,
        "determinism": t.switches.to_dict(),
        "files": dict(t.files),
        "accelerator": t.accelerator,
        "binary-only": t.binary_only,
        "bytecode": t.bytecode,
        "smoke": list(t.smoke),
        "layers": {
            "split": list(t.layers.split),
            "threshold-mb": t.layers.threshold_mb,
            "budget": t.layers.budget,
        },
    }


def _env_map(table: Mapping[str, Any], path: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """``env``: ``NAME = "value"`` sets a variable, ``NAME = false`` removes it (from the flag sets and the base)."""
    raw = table.get("env", {})
    expect(raw, dict, f"{path}.env", "a table of strings", hint='e.g. `env = { NAME = "value", MKL_CBWR = false }`')
    removed = tuple(sorted(k for k, v in raw.items() if v is False))
    values = str_map({"env": {k: v for k, v in raw.items() if v is not False}}, "env", path)
    for name in values:
        if not _ENV_NAME_RE.match(name):
            raise ConfigError(f"`{path}.env.{name}` is not a valid environment variable name")
    return values, removed


def _seed(table: Mapping[str, Any], path: str, default: int | None) -> int | None:
    """``seed``: an integer from 0 to 2**32-1, or ``"off"``."""
    if "seed" not in table:
        return default
    value = table["seed"]
    if value == "off":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ConfigError(
            f'`{path}.seed` must be an integer from 0 to {MAX_SEED} or "off", got {value!r}',
            hint="numpy's legacy global generator takes seeds below 2**32; e.g. `seed = 0`",
        )
    return value


def _files(table: Mapping[str, Any], path: str, default: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """``files = { "models/w.bin" = "/opt/models/w.bin" }``: project files, each in a layer of its own."""
    if "files" not in table:
        return default
    raw = table["files"]
    hint = 'e.g. `files = { "models/weights.bin" = "/opt/models/weights.bin" }`'
    expect(raw, dict, f"{path}.files", "a table of strings", hint=hint)
    out: dict[str, str] = {}
    for source, dest in raw.items():
        expect(dest, str, f"{path}.files.{source}", "a string (an absolute path in the image)", hint=hint)
        parts = str(source).replace("\\", "/").split("/")
        if str(source).startswith("/") or ".." in parts or not source:
            raise ConfigError(
                f"`{path}.files.{source}`: the source must be a path inside the project, relative to it",
                hint=hint,
            )
        dest_parts = dest.split("/")
        if not dest.startswith("/") or ".." in dest_parts or dest.endswith("/") or len(dest) < 2:
            raise ConfigError(
                f"`{path}.files.{source}` = {dest!r}: the destination must be an absolute file path in the image",
                hint=hint,
            )
        if dest in out.values():
            raise ConfigError(f"`{path}.files`: two sources go to {dest!r}", hint="give each file its own path")
        out[str(source)] = dest
    return tuple(sorted(out.items(), key=lambda item: item[1]))


_SWITCH_KEYS = ("deterministic_algorithms", "cudnn_benchmark", "warn_only")


def _switches(table: Mapping[str, Any], path: str, default: Switches) -> Switches:
    """``determinism = { deterministic_algorithms = true, cudnn_benchmark = false, warn_only = false }``."""
    if "determinism" not in table:
        return default
    raw = table["determinism"]
    expect(raw, dict, f"{path}.determinism", "a table", hint="e.g. `determinism = { warn_only = true }`")
    check_keys(raw, set(_SWITCH_KEYS), f"{path}.determinism")
    values = {}
    for key in _SWITCH_KEYS:
        value = raw.get(key, getattr(default, key))
        expect(value, bool, f"{path}.determinism.{key}", "a boolean")
        values[key] = value
    return Switches(**values)


def _python_allowed(python: str, requires_python: str | None) -> bool:
    """Whether a recorded ``X.Y`` is still a valid default: well formed and inside ``requires-python``."""
    if not _PYTHON_RE.match(python):
        return False
    if requires_python is None:
        return True
    spec = SpecifierSet(requires_python)
    return spec.contains(f"{python}.0", prereleases=True) or spec.contains(python, prereleases=True)


@dataclass(frozen=True)
class _Defaults:
    """The project-wide values for unset settings and where each came from."""

    python: str
    python_from: str
    arch: str | None  # None: the host's machine is neither amd64 nor arm64 and nothing is recorded
    arch_from: str
    manylinux: str
    manylinux_from: str
    locked: LockedDefaults

    def record(self) -> dict[str, dict[str, str]]:
        out = {
            "python": {"value": self.python, "from": self.python_from},
            "manylinux": {"value": self.manylinux, "from": self.manylinux_from},
        }
        if self.arch is not None:
            out["platform"] = {"value": f"linux/{self.arch}", "from": self.arch_from}
        return out


def _project_defaults(
    locked: LockedDefaults, requires_python: str | None, explicit_python: str | None, explicit_many: str | None
) -> _Defaults:
    if explicit_python is not None:
        python, python_from = explicit_python, "config"
    elif locked.any_python and _python_allowed(locked.any_python, requires_python):
        python, python_from = locked.any_python, "lock"
    else:
        python, python_from = default_python(requires_python), "host"
    arch, arch_from = (locked.any_arch, "lock") if locked.any_arch in ARCHES else (host_arch(), "host")
    if explicit_many is not None:
        many, many_from = explicit_many, "config"
    elif locked.manylinux and _MANYLINUX_RE.match(locked.manylinux):
        many, many_from = locked.manylinux, "lock"
    else:
        many, many_from = DEFAULT_MANYLINUX, "repro-build"
    return _Defaults(python, python_from, arch, arch_from, many, many_from, locked)


def parse_base(text: str, path: str, dockerfile: DockerfileBase | None, root: Path) -> BaseSpec:
    """Interpret a target's ``base`` string: ``debian:SUITE``, a stage of ``Dockerfile.base``, or an image
    location (:mod:`reprobuild.oci.location`; paths relative to the project) pinned by digest."""
    key = path.rsplit(".", 1)[-1]
    snippet = f'`{key} = "cpu"` (a stage of {DOCKERFILE_BASE}) or `{key} = "debian:{DEFAULT_DEBIAN_SUITE}"`'
    if text.startswith("debian:") and "@" not in text:
        suite = text.split(":", 1)[1]
        if not re.fullmatch(r"[a-z][a-z0-9-]*", suite):
            raise ConfigError(f"`{path}`: {text!r} does not name a Debian suite", hint=snippet)
        return BaseSpec("debian", text, suite=suite)
    stage = _stage_base(text, path, dockerfile)
    if stage is not None:
        return stage
    if "/" not in text and ":" not in text and "@" not in text and not (root / text).exists():
        known = [s.name for s in dockerfile.stages] if dockerfile else []
        close = difflib.get_close_matches(text, known, n=1)
        where = f"{DOCKERFILE_BASE} has stages: {', '.join(known)}" if known else f"there is no {DOCKERFILE_BASE}"
        raise ConfigError(
            f"`{path}`: no stage {text!r} ({where})",
            hint=f"did you mean `{close[0]}`?"
            if close
            else f"add `FROM <image>@sha256:<64 hex> AS {text}` to {DOCKERFILE_BASE}, or use {snippet}",
        )
    loc = parse_location(text, relative_to=root, origin=f"`{path}` = {text!r}")
    if loc.kind == "docker-daemon":
        # Only its image ID pins an engine's image (a name can be re-tagged); the engine keeps no compressed
        # layers, so the base is carried with uncompressed ones (reprobuild.image.basesources.EngineSource).
        if loc.name is None or not DIGEST_RE.match(loc.name) or not loc.name.startswith("sha256:"):
            raise ConfigError(
                f"`{path}`: {text!r} does not pin an image of the Docker engine by its ID",
                hint='use `"docker-daemon:sha256:<64 hex>"` with the ID `docker image inspect --format {{.Id}} NAME` '
                f"prints, or copy it out once (`repro-build copy {text} oci:vendor/base`) and use "
                f'`{key} = "oci:vendor/base@sha256:…"` to keep its compressed layers',
            )
        return BaseSpec("docker-daemon", text, digest=loc.name)
    if loc.kind == "registry":
        assert loc.reference is not None
        if not loc.reference.pinned:
            raise ConfigError(
                f"`{path}`: {text!r} has no digest, so the base could change under the same name",
                hint=f"pin it: `{text}@sha256:<64 hex>`, or move it to {DOCKERFILE_BASE} as a stage and run "
                "`repro-build lock --resolve-bases`",
            )
        return BaseSpec("registry", text, reference=loc.reference, digest=loc.reference.digest)
    assert loc.path is not None
    digest = str(loc.digest) if loc.digest else None
    if loc.kind == "oci-layout":
        if digest is None:
            raise ConfigError(
                f"`{path}`: {text!r} has no digest",
                hint=f'pin the image in the layout: `"oci:{loc.path}@sha256:<64 hex>"`',
            )
        return BaseSpec("oci-layout", text, path=str(loc.path), digest=digest)
    return BaseSpec("docker-archive", text, path=str(loc.path), digest=digest, tag=loc.tag)


def _stage_base(text: str, path: str, dockerfile: DockerfileBase | None) -> BaseSpec | None:
    """The registry base a stage of ``Dockerfile.base`` named ``text`` pins, or None when there is none."""
    stage = dockerfile.stage(text.lower()) if dockerfile is not None else None
    if dockerfile is None or stage is None:
        return None
    resolved = dockerfile.resolved(stage.name)
    if resolved.reference is None:
        raise ConfigError(
            f"`{path}`: stage {text!r} of {DOCKERFILE_BASE} is `scratch`, which has no Python",
            hint="base a target on an image with a Python interpreter",
        )
    if not resolved.reference.pinned:
        raise ConfigError(
            f"{DOCKERFILE_BASE}:{resolved.line}: stage {resolved.name!r} names {resolved.image!r} without a digest",
            hint="run `repro-build lock --resolve-bases` to pin it, keeping the tag",
        )
    return BaseSpec(
        "registry",
        str(resolved.reference),
        reference=resolved.reference,
        digest=resolved.reference.digest,
        stage=stage.name,
    )


_TOP_KEYS = {
    "python",
    "cache",
    "cache-secret-file",
    "source-date-epoch",
    "exclude-newer",
    "compression",
    "entrypoint",
    "cmd",
    "env",
    "workdir",
    "user",
    "builder",
    "debian",
    "targets",
    "flags",
    "layers",
    "binary-only",
    "manylinux",
    "bytecode",
    "seed",
    "determinism",
    "files",
}
_TARGET_KEYS = {
    "base",
    "platform",
    "platforms",
    "python",
    "manylinux",
    "extras",
    "groups",
    "flags",
    "env",
    "layers",
    "accelerator",
    "binary-only",
    "bytecode",
    "smoke",
    "seed",
    "determinism",
    "files",
}
_LAYER_KEYS = {"split", "threshold-mb", "budget"}


def _layers(table: Mapping[str, Any], path: str, default: LayerPolicy) -> LayerPolicy:
    if "layers" not in table:
        return default
    raw = table["layers"]
    expect(raw, dict, f"{path}.layers", "a table", hint='e.g. `layers = { split = ["torch"], budget = 32 }`')
    check_keys(raw, _LAYER_KEYS, f"{path}.layers")
    split = str_list(raw, "split", f"{path}.layers", default.split)
    threshold = raw.get("threshold-mb", default.threshold_mb)
    expect(threshold, int, f"{path}.layers.threshold-mb", "an integer (megabytes)")
    budget = raw.get("budget", default.budget)
    expect(budget, int, f"{path}.layers.budget", "an integer")
    if not 2 <= budget <= 127:
        raise ConfigError(
            f"`{path}.layers.budget` must be between 2 and 127, got {budget}",
            hint="Docker 20.10 refuses images of more than 127 layers",
        )
    if threshold < 1:
        raise ConfigError(f"`{path}.layers.threshold-mb` must be at least 1, got {threshold}")
    return LayerPolicy(split, threshold, budget)


def _flags(table: Mapping[str, Any], path: str, default: tuple[str, ...]) -> tuple[str, ...]:
    flags = str_list(table, "flags", path, default)
    for i, name in enumerate(flags):
        if name not in FLAG_SETS:
            raise ConfigError(
                f"`{path}.flags[{i}]`: unknown flag set {name!r}", hint=did_you_mean(name, FLAG_SETS, "known sets")
            )
    return flags


def _python_version(value: str, path: str) -> str:
    if not _PYTHON_RE.match(value):
        raise ConfigError(f'`{path}` must be a Python version like "3.11" or "3.11.9", got {value!r}')
    return value


def _manylinux(value: str, path: str) -> str:
    m = _MANYLINUX_RE.match(value)
    if not m or not 17 <= int(m.group(1)) <= 40:
        raise ConfigError(
            f"`{path}` must be a PEP 600 tag from manylinux_2_17 to manylinux_2_40, got {value!r}",
            hint=f'e.g. `manylinux = "{DEFAULT_MANYLINUX}"` (glibc 2.28)',
        )
    return value


def _target(
    name: str,
    raw: Mapping[str, Any],
    *,
    tool: Mapping[str, Any],
    project: ProjectMeta,
    defaults: _Defaults,
    dockerfile: DockerfileBase | None,
    root: Path,
) -> Target:
    path = f"{TOOL}.targets.{name}"
    expect(raw, dict, path, "a table", hint=f'e.g.\n\n    [{path}]\n    base = "debian:{DEFAULT_DEBIAN_SUITE}"')
    check_keys(raw, _TARGET_KEYS, path)
    base_text = get_str(raw, "base", path)
    if base_text is None:
        if dockerfile is not None and dockerfile.stage(name) is not None:
            base_text = name
        else:
            base_text = f"debian:{DEFAULT_DEBIAN_SUITE}"
    base = parse_base(base_text, f"{path}.base", dockerfile, root)
    recorded = defaults.locked.target(name)
    platforms = _platforms(raw, path)
    arch = recorded.arch if recorded.arch in ARCHES else defaults.arch
    if platforms:
        arch = platforms[0]
    if "platform" not in raw and arch is None:
        raise ConfigError(
            f"`{path}.platform` is not set, and this machine ({host_platform.machine()!r}) is neither amd64 nor arm64",
            hint=f'set it: `platform = "linux/amd64"` in `[{path}]`',
        )
    platform_text = get_str(raw, "platform", path, f"linux/{arch}") or ""
    parts = platform_text.split("/")
    if len(parts) != 2 or parts[0] != "linux" or parts[1] not in ARCHES:
        raise ConfigError(
            f"`{path}.platform` must be `linux/amd64` or `linux/arm64`, got {platform_text!r}",
            hint='e.g. `platform = "linux/amd64"`',
        )
    default_python_ = defaults.python
    if (
        defaults.python_from != "config"
        and recorded.python
        and _python_allowed(recorded.python, project.requires_python)
    ):
        default_python_ = recorded.python
    target_python = _python_version(get_str(raw, "python", path, default_python_) or default_python_, f"{path}.python")
    default_many = defaults.manylinux
    if defaults.manylinux_from != "config" and recorded.manylinux and _MANYLINUX_RE.match(recorded.manylinux):
        default_many = recorded.manylinux
    manylinux = _manylinux(get_str(raw, "manylinux", path, default_many) or default_many, f"{path}.manylinux")
    extras = str_list(raw, "extras", path)
    check_defined(extras, project.optional_dependencies, f"{path}.extras", "`project.optional-dependencies`")
    groups = str_list(raw, "groups", path)
    check_defined(groups, project.dependency_groups, f"{path}.groups", "`[dependency-groups]`")
    accelerator = get_str(raw, "accelerator", path, "cuda" if name == "cuda" else "none")
    if accelerator not in ("none", "cuda"):
        raise ConfigError(f'`{path}.accelerator` must be "none" or "cuda", got {accelerator!r}')
    default_flags = _flags(tool, TOOL, ("python",))
    flags = _flags(raw, path, default_flags)
    binary_only = raw.get("binary-only", tool.get("binary-only", True))
    expect(binary_only, bool, f"{path}.binary-only", "a boolean")
    layers = _layers(raw, path, _layers(tool, TOOL, LayerPolicy()))
    env, env_unset = _env_map(raw, path)
    project_env, project_env_unset = _env_map(tool, TOOL)
    bytecode = get_str(raw, "bytecode", path, get_str(tool, "bytecode", TOOL, "unchecked-hash"))
    if bytecode not in ("none", "unchecked-hash"):
        raise ConfigError(
            f'`{path}.bytecode` must be "none" or "unchecked-hash", got {bytecode!r}',
            hint='"unchecked-hash" ships PEP 552 .pyc files compiled for the in-image paths',
        )
    return Target(
        name=name,
        base=base,
        python=target_python,
        os=parts[0],
        arch=parts[1],
        manylinux=manylinux,
        extras=extras,
        groups=groups,
        flags=flags,
        env=MappingProxyType(env),
        env_unset=env_unset,
        project_env=MappingProxyType(project_env),
        project_env_unset=project_env_unset,
        seed=_seed(raw, path, _seed(tool, TOOL, None)),
        switches=_switches(raw, path, _switches(tool, TOOL, Switches())),
        files=_files(raw, path, _files(tool, TOOL, ())),
        layers=layers,
        accelerator=accelerator,  # type: ignore[arg-type]
        binary_only=bool(binary_only),
        bytecode=bytecode,  # type: ignore[arg-type]
        smoke=_smoke(raw, path),
        platforms=platforms,
    )


def _platforms(raw: Mapping[str, Any], path: str) -> tuple[str, ...]:
    """``platforms = ["linux/amd64", "linux/arm64"]`` as architectures, in order; () when unset."""
    if "platforms" not in raw:
        return ()
    if "platform" in raw:
        raise ConfigError(
            f"`{path}` sets both `platform` and `platforms`",
            hint="keep one: `platform` builds one image, `platforms` one image per platform and an index",
        )
    example = 'e.g. `platforms = ["linux/amd64", "linux/arm64"]`'
    texts = str_list(raw, "platforms", path)
    if not texts:
        raise ConfigError(f"`{path}.platforms` is empty", hint=example)
    arches: list[str] = []
    for i, text in enumerate(texts):
        parts = text.split("/")
        if len(parts) != 2 or parts[0] != "linux" or parts[1] not in ARCHES:
            raise ConfigError(
                f"`{path}.platforms[{i}]` must be `linux/amd64` or `linux/arm64`, got {text!r}", hint=example
            )
        if parts[1] in arches:
            raise ConfigError(f"`{path}.platforms[{i}]`: {text!r} is listed twice", hint="name each platform once")
        arches.append(parts[1])
    return tuple(arches)


def _smoke(raw: Mapping[str, Any], path: str) -> tuple[str, ...]:
    smoke = str_list(raw, "smoke", path)
    if "smoke" in raw and (not smoke or not all(smoke)):
        raise ConfigError(
            f"`{path}.smoke` must be a non-empty list of non-empty strings (an argv), got {raw['smoke']!r}",
            hint='e.g. `smoke = ["my-app", "--help"]`',
        )
    return smoke


def _explicit_python(tool: Mapping[str, Any]) -> str | None:
    """``[tool.repro-build] python``, validated, or None."""
    value = get_str(tool, "python", TOOL)
    return None if value is None else _python_version(value, f"{TOOL}.python")


def load_config(root: Path) -> Config:
    """Read ``root/pyproject.toml`` (and ``root/Dockerfile.base`` if present) into a :class:`Config`."""
    root = root.resolve()
    data = read_pyproject(root)
    static_project = project_meta(data)
    tool_all = data.get("tool", {})
    expect(tool_all, dict, "tool", "a table")
    explicit = "repro-build" in tool_all
    tool = tool_all.get("repro-build", {})
    expect(tool, dict, TOOL, "a table")
    check_keys(tool, _TOP_KEYS, TOOL)

    dockerfile_path = root / DOCKERFILE_BASE
    dockerfile = parse_dockerfile_base(dockerfile_path) if dockerfile_path.is_file() else None

    explicit_python = _explicit_python(tool)
    project = complete_project(root, data, static_project, explicit_python)
    explicit_many = get_str(tool, "manylinux", TOOL)
    if explicit_many is not None:
        explicit_many = _manylinux(explicit_many, f"{TOOL}.manylinux")
    defaults = _project_defaults(
        read_locked_defaults(locks_dir(root)), project.requires_python, explicit_python, explicit_many
    )
    python = defaults.python

    epoch_raw = tool.get("source-date-epoch", "git")
    if isinstance(epoch_raw, bool) or not (isinstance(epoch_raw, int) or epoch_raw == "git"):
        raise ConfigError(
            f'`{TOOL}.source-date-epoch` must be "git" or an integer, not {epoch_raw!r}',
            hint='`source-date-epoch = "git"` uses the time of the HEAD commit',
        )
    if isinstance(epoch_raw, int) and epoch_raw < 0:
        raise ConfigError(f"`{TOOL}.source-date-epoch` must not be negative")

    exclude_newer = tool.get("exclude-newer")
    if exclude_newer is not None:
        exclude_newer = _exclude_newer(exclude_newer)

    compression = _compression(tool)

    debian_raw = tool.get("debian", {})
    expect(debian_raw, dict, f"{TOOL}.debian", "a table")
    check_keys(debian_raw, {"mirror", "packages"}, f"{TOOL}.debian")
    debian = DebianSettings(
        mirror=get_str(debian_raw, "mirror", f"{TOOL}.debian"),
        packages=str_list(debian_raw, "packages", f"{TOOL}.debian"),
    )

    builder = get_str(tool, "builder", TOOL)
    if builder is not None and not (dockerfile and dockerfile.stage(builder)):
        ref = parse_reference(builder, origin=f"`{TOOL}.builder`")
        if not ref.pinned:
            raise ConfigError(
                f"`{TOOL}.builder`: {builder!r} has no digest",
                hint=f"pin it (`{builder}@sha256:<64 hex>`) or name a stage of {DOCKERFILE_BASE}",
            )

    targets_raw = tool.get("targets")
    if targets_raw is None:
        targets_raw = {"cpu": {}}
    expect(targets_raw, dict, f"{TOOL}.targets", "a table of targets")
    if not targets_raw:
        raise ConfigError(
            f"`{TOOL}.targets` is empty",
            hint=f'add one:\n\n    [{TOOL}.targets.cpu]\n    base = "debian:{DEFAULT_DEBIAN_SUITE}"',
        )
    targets: dict[str, Target] = {}
    for name, raw in targets_raw.items():
        if name in {"build", "inputs", "base", "repro-build"}:
            raise ConfigError(
                f"`{TOOL}.targets.{name}`: {name!r} is reserved (it names a file in `{LOCKS_DIR}/`)",
                hint="pick another target name, e.g. `cpu` or `cuda`",
            )
        if not is_target_name(name):
            raise ConfigError(
                f"`{TOOL}.targets.{name}`: target names are lowercase letters, digits, `-` and `_`",
                hint=f"they become file names (`{LOCKS_DIR}/<target>.txt`)",
            )
        targets[name] = _target(
            name, raw, tool=tool, project=project, defaults=defaults, dockerfile=dockerfile, root=root
        )

    return Config(
        root=root,
        project=project,
        python=python,
        epoch_policy=epoch_raw,
        exclude_newer=exclude_newer,
        compression=compression,
        entrypoint=str_list(tool, "entrypoint", TOOL),
        cmd=str_list(tool, "cmd", TOOL),
        env=MappingProxyType(_env_map(tool, TOOL)[0]),
        env_unset=_env_map(tool, TOOL)[1],
        workdir=get_str(tool, "workdir", TOOL, "/") or "/",
        user=get_str(tool, "user", TOOL),
        builder=builder,
        debian=debian,
        targets=MappingProxyType(targets),
        dockerfile_base=dockerfile,
        explicit=explicit,
        defaults=MappingProxyType(defaults.record()),
        cache=get_str(tool, "cache", TOOL),
        cache_secret_file=get_str(tool, "cache-secret-file", TOOL),
    )


def _exclude_newer(value: object) -> str:
    """RFC 3339 timestamp or local date, as uv accepts (TOML datetimes are converted too)."""
    import datetime as dt

    path = f"{TOOL}.exclude-newer"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ConfigError(f"`{path}` needs a time zone", hint="e.g. `exclude-newer = 2025-06-01T00:00:00Z`")
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    expect(value, str, path, "an RFC 3339 timestamp", hint='e.g. `exclude-newer = "2025-06-01T00:00:00Z"`')
    text = str(value)
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise ConfigError(
            f"`{path}` is not an RFC 3339 timestamp or date: {text!r}",
            hint='e.g. `exclude-newer = "2025-06-01T00:00:00Z"`',
        ) from e
    return text


def _compression(tool: Mapping[str, Any]) -> Compressor:
    """``compression``: an algorithm of :data:`reprobuild.oci.compress.LEVELS` and one of its levels."""
    path = f"{TOOL}.compression"
    raw = tool.get("compression", {})
    if isinstance(raw, str):
        raw = {"algorithm": raw}
    expect(raw, dict, path, 'a table, e.g. `{ algorithm = "gzip", level = 6 }`')
    check_keys(raw, {"algorithm", "level"}, path)
    algorithm = get_str(raw, "algorithm", path, "gzip") or "gzip"
    if algorithm not in LEVELS:
        raise ConfigError(
            f"`{path}.algorithm` must be one of {', '.join(map(repr, LEVELS))}, got {algorithm!r}",
            hint=did_you_mean(algorithm, LEVELS, "algorithms"),
        )
    levels = LEVELS[algorithm]
    level = raw.get("level")
    if level is not None:
        expect(level, int, f"{path}.level", "an integer")
        if levels is None or not levels.low <= level <= levels.high:
            allowed = "none" if levels is None else f"from {levels.low} to {levels.high}"
            raise ConfigError(f"`{path}.level` for {algorithm} must be {allowed}, got {level}")
    return Compressor.of(algorithm, level)
