"""Every command the docs show: ``repro-build …`` and ``nox -s …`` lines of the fenced code blocks of
README.md and docs/, where they are, and what a test does with each (:data:`KINDS`).

What counts as a command line in a block:

- ``console`` and ``text`` blocks: the lines after a ``$ `` (or a root ``# ``) prompt, a trailing ``\\``
  joining the next line; what follows is the command's output;
- ``sh``, ``bash`` and ``shell`` blocks: every line that is not a comment;
- ``yaml`` blocks: a step's ``run: …``, and the lines of a ``run: |`` block.

A line is cut at the shell's operators (``&&``, ``||``, ``;``, ``|``); each piece that starts with
``repro-build`` or ``nox`` (after ``NAME=value`` assignments) is one :class:`DocCommand`, and so is the
command of a ``$(…)`` substitution.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

_FENCE = re.compile(r"^\s*```([\w-]*)\s*$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_OPERATORS = {"&&", "||", ";", "|", "&"}
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")


@dataclass(frozen=True)
class DocCommand:
    """One command of the docs: ``file:line``, the line as written, and its argv (assignments and comments
    removed; ``argv[0]`` is ``repro-build`` or ``nox``)."""

    file: str
    line: int
    text: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {' '.join(self.argv)}"


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def _command_lines(lines: list[str], language: str) -> list[tuple[int, str]]:
    """(index in ``lines``, command line) of one fenced block's body."""
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        start = i
        text: str | None = None
        if language in ("console", "text"):
            for prompt in ("$ ", "# "):
                if stripped.startswith(prompt):
                    text = stripped[len(prompt) :]
        elif language in ("sh", "bash", "shell"):
            text = None if stripped.startswith("#") or not stripped else stripped
        elif language == "yaml":
            body = stripped.removeprefix("- ")
            if body.startswith("run: |"):
                indent = len(raw) - len(raw.lstrip())
                while i + 1 < len(lines) and (
                    not lines[i + 1].strip() or len(lines[i + 1]) - len(lines[i + 1].lstrip()) > indent
                ):
                    i += 1
                    if lines[i].strip():
                        out.append((i, lines[i].strip()))
                i += 1
                continue
            if body.startswith("run: "):
                text = body[len("run: ") :]
        if text is not None:
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1].rstrip() + " " + lines[i].strip()
            out.append((start, text))
        i += 1
    return out


def _pieces(text: str) -> list[list[str]]:
    """``text`` cut at the shell's operators, each piece as words (quotes removed, ``#`` comments dropped)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars="&|;")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    pieces: list[list[str]] = [[]]
    for word in lexer:
        if word in _OPERATORS:
            pieces.append([])
        else:
            pieces[-1].append(word)
    return [p for p in pieces if p]


def doc_commands() -> list[DocCommand]:
    """Every ``repro-build`` and ``nox`` command of the docs, in file and line order."""
    found: list[DocCommand] = []
    for path in doc_files():
        lines = path.read_text().splitlines()
        name = path.relative_to(REPO).as_posix()
        i = 0
        while i < len(lines):
            fence = _FENCE.match(lines[i])
            if not fence:
                i += 1
                continue
            end = next((j for j in range(i + 1, len(lines)) if _FENCE.match(lines[j])), len(lines))
            body = lines[i + 1 : end]
            for offset, text in _command_lines(body, fence.group(1)):
                # A command substitution's command too: `IMAGE=$(repro-build image --push …)`.
                inner = [m.group(1) for m in _SUBSTITUTION.finditer(text)]
                for words in [w for piece in (text, *inner) for w in _pieces(piece)]:
                    env: list[tuple[str, str]] = []
                    while words and _ASSIGNMENT.match(words[0]):
                        key, _, value = words.pop(0).partition("=")
                        env.append((key, value))
                    if words and words[0] in ("repro-build", "nox"):
                        found.append(DocCommand(name, i + 2 + offset, text, tuple(words), tuple(env)))
            i = end + 1
    return found


@dataclass(frozen=True)
class Kind:
    """What the tests do with the doc commands that match ``pattern`` (a regex searched in
    ``file: argv``), and why."""

    pattern: str
    kind: str  # "run" or "parse only"
    why: str

    def matches(self, command: DocCommand) -> bool:
        return re.search(self.pattern, f"{command.file}: {' '.join(command.argv)}") is not None


RUN_TUTORIAL = "run, in order, by tests/foundation/test_docs_commands.py::test_the_tutorial_runs_end_to_end"
RUN_AFTER = (
    "run by tests/foundation/test_docs_commands.py::test_the_tutorial_runs_end_to_end after the tutorial, in the "
    "tutorial's project, against the loopback registry (its address for 127.0.0.1:5055)"
)

#: Every command of the docs falls under the first of these that matches; each one is used. A new command
#: in the docs needs a line here: run it in a test, or say why it is only parsed.
KINDS: tuple[Kind, ...] = (
    # The tutorial, every command of it; the README's quick start and the reference's `verify` are the same.
    Kind(r"^docs/tutorial\.md: ", "run", RUN_TUTORIAL),
    Kind(r"^README\.md: repro-build (lock|image --load|verify build/cpu/manifest\.json)$", "run", RUN_TUTORIAL),
    Kind(r"^docs/reference/cli\.md: repro-build verify build/cpu/manifest\.json$", "run", RUN_TUTORIAL),
    # The how-tos' commands against the loopback registry and the engine, on the tutorial's build.
    Kind(
        r"^docs/how-to/push-and-mirror\.md: repro-build (image --push|copy) .*(127\.0\.0\.1:5055|/tmp/tut)",
        "run",
        RUN_AFTER,
    ),
    Kind(
        r"^docs/how-to/verify-before-deploy\.md: "
        r"repro-build verify build/cpu/manifest\.json --image (127|docker-daemon)",
        "run",
        RUN_AFTER,
    ),
    Kind(r"^docs/how-to/sbom-and-provenance\.md: repro-build (copy|inspect) ", "run", RUN_AFTER),
    Kind(
        r"^docs/how-to/sbom-and-provenance\.md: repro-build verify (--image oci-layout|manifest\.json$)",
        "run",
        RUN_AFTER,
    ),
    Kind(
        r"^README\.md: nox -s build$",
        "run",
        "tests/templates/test_init_build.py runs `nox -s build` of the noxfile `init` generates; CI runs "
        "repro-build's own",
    ),
    Kind(r"^README\.md: nox -s tests$", "parse only", "the test suite itself: CI runs it"),
    Kind(
        r"nox -s tests -- tests/secondhost", "parse only", "needs root, mmdebstrap and a chroot: CI's second-host job"
    ),
    # Names outside this machine: a public registry, an upstream, a git host, CI variables.
    Kind(
        r"registry\.example|ghcr\.io|<upstream>|git\.example\.com|\$IMAGE|\$PINNED_REF|\$\{\{|\$GITHUB_SHA",
        "parse only",
        "names a registry, repository or CI variable that does not exist here",
    ),
    Kind(r"--target cuda|--resolve-bases", "parse only", "a CUDA base pulled from a public registry"),
    Kind(
        r"^docs/reference/(cli|config)\.md: repro-build lock --check$",
        "parse only",
        "its output shown is for a stale lock (cli.md) or a misspelt key (config.md), states the tutorial's project "
        "is not in; the tutorial runs `lock --check` on current locks",
    ),
    Kind(
        r"^docs/how-to/offline-rebuild\.md: ",
        "parse only",
        "needs the network cut off and an emptied cache; tests/manifest/test_verify.py runs `verify --offline` "
        "with an empty cache and with the network unreachable",
    ),
    Kind(r"^docs/how-to/existing-projects\.md: ", "parse only", "a project of the reader's own"),
    Kind(
        r"^docs/how-to/from-a-dockerfile\.md: ",
        "parse only",
        "tests/templates/test_render.py runs `dockerfile` on the bundled example",
    ),
    Kind(
        r"^docs/how-to/check-host-independence\.md: repro-build diff oci-layout:A oci-layout:B",
        "parse only",
        "the form of the second-host job's failure report; A and B are its two builds",
    ),
    Kind(
        r"^docs/explanation/determinism\.md: repro-build verify edited/manifest\.json",
        "parse only",
        "a hand-edited manifest",
    ),
    Kind(
        r"^docs/how-to/verify-before-deploy\.md: repro-build verify (\.\./)?manifest\.json",
        "parse only",
        "where verify finds the commit: tests/manifest/test_repo.py runs each case",
    ),
    Kind(
        r"^docs/reference/cli\.md: repro-build verify manifest\.json$",
        "parse only",
        "the error when no repository holds the commit: tests/manifest/test_repo.py",
    ),
    Kind(
        r"^docs/how-to/verify-before-deploy\.md: repro-build inspect oci-layout:examples/hello-ml",
        "parse only",
        "the bundled example's build, which `nox -s build` makes",
    ),
    Kind(
        r"^docs/how-to/multi-platform\.md: repro-build (lock|image|image --smoke|verify build/cpu/manifest\.json)$",
        "parse only",
        "a two-platform project: tests/image/test_multiplatform.py runs `image` (with --push and --smoke), `verify` "
        "and the gate on its fixture project, and `lock --check` on the locks `lock` wrote for it",
    ),
)


def kind_of(command: DocCommand) -> Kind | None:
    return next((k for k in KINDS if k.matches(command)), None)
