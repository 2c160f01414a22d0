"""``repro-build init``: make an existing Python project a repro-build project, from ``templates/init/``.

Any PEP 517 project works: PEP 621 ``[project]``, setup.py/setup.cfg only, or poetry. Where there is no
``[project]`` table, the name comes from the backend's metadata, and none is added.

What it writes (paths relative to the project):

``pyproject.toml``
    a ``[tool.repro-build]`` table appended; every other byte of the file is kept (comments, spacing,
    table order). tomlkit checks the result parses to exactly the old data plus the new table.
``Dockerfile.base``
    the base-pin file with example stages commented out: no registry is assumed reachable and a digest
    is never invented; ``repro-build lock --resolve-bases`` pins a stage once it is uncommented.
``noxfile.py``
    a ``build`` session. An existing noxfile is left alone (unless ``force``): the session to add is
    returned as advice instead.
``.github/workflows/repro-build.yml``
    GitHub Actions: lock check, build + verify, push by digest, the ``verify --image`` gate, deploy.

Contract: every output is rendered and the resulting configuration loaded (:func:`load_config` on a
scratch copy) before anything is written. A file that exists (or a ``[tool.repro-build]`` table that
exists) is overwritten only with ``force``; otherwise :class:`InitConflictError` lists all of them and
nothing is written. Files are written atomically one by one; if a later write fails, the earlier ones
are restored.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomlkit
import tomlkit.exceptions
from packaging.utils import canonicalize_name

from reprobuild.config import TOOL, load_config
from reprobuild.distribution import DISTRIBUTION
from reprobuild.dockerfile_base import FILENAME as DOCKERFILE_BASE
from reprobuild.errors import ConfigError, ReproBuildError
from reprobuild.fsutil import atomic_write_bytes, atomic_write_text
from reprobuild.lock.toollock import TOOL_LOCK
from reprobuild.lockdir import LOCKS_DIR
from reprobuild.pyproject import LEGACY_PROJECT_FILES, default_python
from reprobuild.templates import render
from reprobuild.wheel.source import export, snapshot

NOXFILE = "noxfile.py"
WORKFLOW = ".github/workflows/repro-build.yml"
PYPROJECT = "pyproject.toml"


class InitConflictError(ReproBuildError):
    """``init`` would overwrite something and ``force`` was not given; nothing was written."""


Action = Literal["create", "overwrite", "update"]


@dataclass(frozen=True)
class PlannedFile:
    """One file ``init`` writes: its path relative to the project, new text, and what happens to it."""

    path: str
    text: str
    action: Action


@dataclass(frozen=True)
class InitResult:
    """What ``init`` wrote, and advice for what it deliberately left alone."""

    written: tuple[PlannedFile, ...]
    advice: tuple[str, ...]


def _toml_value(value: Any) -> str:
    return str(tomlkit.item(value).as_string())


def _project_table(doc: tomlkit.TOMLDocument, root: Path) -> dict[str, Any]:
    """``[project]`` as written, or, for a project without PEP 621 metadata (setup.py/setup.cfg only,
    poetry), the name and ``Requires-Python`` its build backend reports. init never adds a ``[project]``
    table: that would change how the backend behaves (setuptools' auto-discovery, for one)."""
    project = doc.get("project")
    if isinstance(project, dict) and isinstance(project.get("name"), str):
        return dict(project)
    meta = load_config(root).project
    table: dict[str, Any] = {"name": meta.name}
    if meta.requires_python:
        table["requires-python"] = meta.requires_python
    return table


def _tool_table_text(project: dict[str, Any]) -> str:
    requires = project.get("requires-python")
    python = default_python(requires if isinstance(requires, str) else None)
    scripts = project.get("scripts")
    if isinstance(scripts, dict) and scripts:
        first = next(iter(scripts))
        entrypoint = f"# The image runs the first of [project.scripts].\nentrypoint = {_toml_value([first])}"
    else:
        entrypoint = '# What the image runs, e.g. a [project.scripts] entry:\n# entrypoint = ["my-app"]'
    return render(
        "init/tool-repro-build.toml.tmpl", {"python": python, "entrypoint": entrypoint, "smoke": _smoke(scripts)}
    )


def _smoke(scripts: object) -> str:
    """The smoke test ``init`` proposes: the first console script with ``--help`` (argparse, click and typer
    all answer it with exit 0), which fails when the script cannot even be imported."""
    intro = "# Run in the loaded image, without a network, by `repro-build image --smoke` and `nox -s build`;\n"
    intro += "# it must exit 0.\n"
    if isinstance(scripts, dict) and scripts:
        return intro + f"smoke = {_toml_value([next(iter(scripts)), '--help'])}"
    return intro + '# smoke = ["my-app", "--help"]'


def _new_pyproject(original: str, path: Path, *, force: bool) -> tuple[str, bool, dict[str, Any]]:
    """The new pyproject text, whether it replaced an existing table, and the ``[project]`` table."""
    try:
        doc = tomlkit.parse(original)
    except tomlkit.exceptions.ParseError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}", hint="fix the syntax at the line and column shown") from e
    project = _project_table(doc, path.parent)
    tool = doc.get("tool")
    existed = isinstance(tool, dict) and "repro-build" in tool
    if existed and not force:
        return original, True, project  # a conflict: plan_init refuses before anything is written
    base_text = original
    snippet = _tool_table_text(project)
    if existed:
        del doc["tool"]["repro-build"]
        base_text = doc.as_string()
        # tomlkit keeps the comment above a table with the table before it: drop init's own header too.
        header = snippet[: snippet.index(f"[{TOOL}]")]
        if header:
            base_text = base_text.replace("\n" + header, "\n", 1)
    text = base_text.rstrip("\n") + "\n\n" + snippet if base_text else snippet
    # The result must parse to exactly the old data plus the new table (tomlkit, so comments survive).
    try:
        new = tomlkit.parse(text).unwrap()
    except tomlkit.exceptions.ParseError as e:
        raise ConfigError(f"{path}: adding `[{TOOL}]` would make it invalid TOML: {e}") from e
    expected = tomlkit.parse(base_text).unwrap()
    expected.setdefault("tool", {})["repro-build"] = tomlkit.parse(snippet).unwrap()["tool"]["repro-build"]
    if new != expected:
        raise ConfigError(
            f"{path}: appending `[{TOOL}]` would change other tables",
            hint=f"add the table by hand:\n\n{snippet}",
        )
    return text, existed, project


def _workflow(project: dict[str, Any], python: str, targets: list[str]) -> str:
    pad = " " * 10
    outputs = "\n".join(f"      {t}: ${{{{ steps.push.outputs.{t} }}}}" for t in targets)
    push = "\n".join(
        f'{pad}ref=$(repro-build image --target {t} --push "$IMAGE:{t}-$GITHUB_SHA")\n'
        f'{pad}echo "{t}=$ref" >> "$GITHUB_OUTPUT"'
        for t in targets
    )
    gate = "\n".join(
        f'{pad}repro-build verify build/{t}/manifest.json --image "${{{{ needs.push.outputs.{t} }}}}"' for t in targets
    )
    deploy = "\n".join(f'{pad}echo "would deploy ${{{{ needs.push.outputs.{t} }}}}"' for t in targets)
    return render(
        "init/repro-build.yml.tmpl",
        {
            "project": str(project["name"]),
            "image_name": canonicalize_name(str(project["name"])),
            "python": python,
            "distribution": DISTRIBUTION,
            "tool_lock": f"{LOCKS_DIR}/{TOOL_LOCK}",
            "push_outputs": outputs,
            "push_lines": push,
            "gate_lines": gate,
            "deploy_lines": deploy,
        },
    )


def nox_session_text() -> str:
    """The ``build`` session to paste into an existing noxfile."""
    return render("init/nox-session.py.tmpl", {"distribution": DISTRIBUTION, "tool_lock": f"{LOCKS_DIR}/{TOOL_LOCK}"})


def plan_init(root: Path, *, force: bool = False) -> tuple[list[PlannedFile], list[str]]:
    """Render everything ``init`` would write in ``root``; raise :class:`InitConflictError` on conflicts.

    Returns the files to write and advice lines for files left alone. Writes nothing.
    """
    root = root.resolve()
    pyproject = root / PYPROJECT
    try:
        original = pyproject.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        if not any((root / name).is_file() for name in LEGACY_PROJECT_FILES):
            raise ConfigError(
                f"no {PYPROJECT}, setup.py or setup.cfg in {root}",
                hint="run `repro-build init` in a Python project, or pass `--project DIR`",
            ) from e
        # A pyproject.toml with no [build-system] names the same default backend as none at all (PEP 517).
        original = ""
    pyproject_text, had_table, project = _new_pyproject(original, pyproject, force=force)
    conflicts: list[str] = []
    if had_table and not force:
        conflicts.append(f"`{PYPROJECT}` already has a `[{TOOL}]` table")

    python = default_python(project.get("requires-python") if isinstance(project.get("requires-python"), str) else None)
    planned: list[PlannedFile] = [PlannedFile(PYPROJECT, pyproject_text, "update" if original else "create")]
    advice: list[str] = []
    outputs = {
        DOCKERFILE_BASE: render("init/Dockerfile.base.tmpl", {"project": str(project["name"]), "python": python}),
        NOXFILE: render("init/noxfile.py.tmpl", {"project": str(project["name"]), "session": nox_session_text()}),
        # The workflow covers the targets init configures (`cpu`); add lines for targets added later.
        WORKFLOW: _workflow(project, python, ["cpu"]),
    }
    for rel, text in outputs.items():
        exists = (root / rel).exists()
        if exists and not force:
            if rel == NOXFILE:
                advice.append(
                    f"`{NOXFILE}` exists and was left alone; add this session to it (and `import nox`):\n\n"
                    + nox_session_text()
                )
                continue
            conflicts.append(f"`{rel}` exists")
            continue
        planned.append(PlannedFile(rel, text, "overwrite" if exists else "create"))
    if conflicts:
        raise InitConflictError(
            f"`repro-build init` would overwrite: {'; '.join(conflicts)}. Nothing was written",
            hint="pass `--force` to overwrite them, or move them away first",
        )
    _check_loads(root, planned)
    return planned, advice


def _check_loads(root: Path, planned: list[PlannedFile]) -> None:
    """Load the configuration the planned files give, in a scratch directory, before writing anything."""
    files = {p.path: p.text for p in planned}
    with tempfile.TemporaryDirectory(prefix="repro-build-init-") as tmp:
        scratch = Path(tmp)
        if not _static_metadata(files[PYPROJECT]):
            # The backend reads the metadata from the whole source, so the scratch copy needs all of it.
            export(snapshot(root, allow_dirty=True), scratch, epoch_seconds=0)
        for rel in (PYPROJECT, DOCKERFILE_BASE):
            if rel in files:
                (scratch / rel).write_text(files[rel], encoding="utf-8")
            elif (root / rel).is_file():
                (scratch / rel).write_bytes((root / rel).read_bytes())
        try:
            load_config(scratch)
        except ReproBuildError as e:
            raise e.with_context("the configuration `repro-build init` would write does not load") from e


def _static_metadata(pyproject_text: str) -> bool:
    project = tomlkit.parse(pyproject_text).unwrap().get("project")
    return isinstance(project, dict) and not set(project.get("dynamic", [])) - {"version"}


def init_project(root: Path, *, force: bool = False) -> InitResult:
    """Run ``init`` in ``root`` (see the module docs for the contract)."""
    root = root.resolve()
    planned, advice = plan_init(root, force=force)
    previous: list[tuple[Path, bytes | None]] = []
    try:
        for item in planned:
            path = root / item.path
            previous.append((path, path.read_bytes() if path.exists() else None))
            atomic_write_text(path, item.text)
    except BaseException:
        for path, data in reversed(previous):
            if data is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write_bytes(path, data)
        raise
    return InitResult(tuple(planned), tuple(advice))
