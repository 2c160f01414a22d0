"""``Dockerfile.base``: the base-image pins, as named stages of a valid Dockerfile.

One ``FROM ref@sha256:<digest> AS <stage>`` line per base, so Renovate/Dependabot can bump the digests
and ``docker build -f Dockerfile.base --target <stage> .`` still works where the base can be pulled.
Only ``FROM`` (with ``--platform=`` and ``AS``), ``ARG`` before the first ``FROM`` (substituted into
``FROM`` lines, as Docker does), comments, parser directives and line continuations are interpreted;
other instructions are allowed and ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reprobuild.errors import ConfigError
from reprobuild.oci.reference import Reference, parse_reference

FILENAME = "Dockerfile.base"
_FROM_RE = re.compile(
    r"^FROM\s+(?:--platform=(?P<platform>\S+)\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?\s*$",
    re.IGNORECASE,
)
_ARG_RE = re.compile(r"^ARG\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:=(?P<value>\S*))?\s*$", re.IGNORECASE)
_VAR_RE = re.compile(r"\$\{(?P<b>[A-Za-z_][A-Za-z0-9_]*)\}|\$(?P<p>[A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` line: its stage name, the image it names, and where it stands in the file."""

    name: str
    image: str
    line: int
    platform: str | None = None
    reference: Reference | None = None  # None for `scratch` or a reference to an earlier stage
    parent: str | None = None  # the earlier stage this one builds on, if any

    @property
    def pinned(self) -> bool:
        return self.reference is None or self.reference.pinned


@dataclass(frozen=True)
class DockerfileBase:
    """All stages of a ``Dockerfile.base`` by name, in file order."""

    path: Path
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage | None:
        for s in self.stages:
            if s.name == name:
                return s
        return None

    def resolved(self, name: str) -> Stage:
        """Follow ``FROM <earlier-stage>`` links to the stage that names an image."""
        stage = self.stage(name)
        seen: set[str] = set()
        while stage is not None and stage.parent is not None and stage.name not in seen:
            seen.add(stage.name)
            stage = self.stage(stage.parent)
        if stage is None:
            raise ConfigError(f"{self.path.name}: no stage named {name!r}")
        return stage

    def unpinned(self) -> list[Stage]:
        """Stages that name an image by tag only."""
        return [s for s in self.stages if not s.pinned]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join ``\\`` continuations; drop comments and blank lines; keep the first line number."""
    out: list[tuple[int, str]] = []
    buf = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1].strip() + " "
            continue
        buf += line
        out.append((start, buf.strip()))
        buf = ""
    if buf.strip():
        out.append((start, buf.strip()))
    return out


def parse_dockerfile_base(path: Path) -> DockerfileBase:
    """Parse ``path``; every stage must be named (``AS name``) and the names unique."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from e
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in _logical_lines(text):
        where = f"{path.name}:{number}"
        keyword = line.split(None, 1)[0].upper()
        if keyword == "ARG" and not stages:
            m = _ARG_RE.match(line)
            if m and m.group("value") is not None:
                args[m.group("name")] = m.group("value")
            continue
        if keyword != "FROM":
            continue
        m = _FROM_RE.match(line)
        if not m:
            raise ConfigError(
                f"{where}: cannot parse {line!r}",
                hint="write `FROM <image>@sha256:<64 hex> AS <stage>`",
            )
        image = _VAR_RE.sub(lambda v: args.get(v.group("b") or v.group("p"), ""), m.group("image"))
        name = m.group("stage")
        if not name:
            raise ConfigError(
                f"{where}: the stage `FROM {image}` has no name",
                hint=f"name it so a target can refer to it: `FROM {image} AS cpu`",
            )
        name = name.lower()
        if any(s.name == name for s in stages):
            raise ConfigError(f"{where}: stage name {name!r} is used twice")
        earlier = {s.name for s in stages}
        if image.lower() in earlier:
            stages.append(Stage(name, image, number, m.group("platform"), None, image.lower()))
        elif image.lower() == "scratch":
            stages.append(Stage(name, image, number, m.group("platform")))
        else:
            ref = parse_reference(image, origin=f"{where} (stage {name!r})")
            stages.append(Stage(name, image, number, m.group("platform"), ref))
    return DockerfileBase(path, tuple(stages))


def rewrite_pins(path: Path, pins: dict[str, str]) -> str:
    """Return the file's text with each named stage's image pinned to ``pins[stage]`` (a digest).

    The tag is kept for readability (``python:3.11-slim@sha256:…``); everything else in the file is
    left exactly as it was.
    """
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    parsed = parse_dockerfile_base(path)
    for stage in parsed.stages:
        if stage.name not in pins or stage.reference is None:
            continue
        index = stage.line - 1
        original = lines[index]
        if stage.image not in original:
            raise ConfigError(
                f"{path.name}:{stage.line}: the image of stage {stage.name!r} is built from ARG values",
                hint=f"pin it by hand: `FROM <image>@{pins[stage.name]} AS {stage.name}`",
            )
        bare = stage.image.split("@", 1)[0]
        lines[index] = original.replace(stage.image, f"{bare}@{pins[stage.name]}", 1)
    return "".join(lines)
