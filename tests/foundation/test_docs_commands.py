"""Every command the docs show is run by a test, or at least parsed by the real parsers.

tests/docscommands.py finds each ``repro-build …`` and ``nox -s …`` line of the fenced code blocks of
README.md and docs/ and says, in ``KINDS``, what is done with it and why: *run* (the tutorial, in order, end
to end, then the how-tos' commands against the loopback registry and the engine, on the tutorial's build), or
*parse only* (a public registry, CI variables, a GPU base, …). Every one of them is parsed by the CLI's own
argparse parser (or nox's), so an unknown command or option in the docs fails here.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reprobuild.cli.main import COMMANDS, build_parser
from reprobuild.cli.verbosity import unknown_command
from tests.docscommands import DOCS, KINDS, REPO, RUN_AFTER, RUN_TUTORIAL, DocCommand, doc_commands, kind_of
from tests.testbed import Engine, Registry

COMMANDS_IN_DOCS = doc_commands()


def _id(command: DocCommand) -> str:
    kind = kind_of(command)
    return f"{command.where} [{kind.kind if kind else 'no kind'}]"


def parse_problem(argv: tuple[str, ...]) -> str | None:
    """Why the real parser refuses ``argv`` (``repro-build …`` or ``nox …``), or None when it takes it."""
    if argv[0] == "nox":
        return _nox_problem(argv[1:])
    args = list(argv[1:])
    unknown = unknown_command(args, COMMANDS)
    if unknown is not None:
        return unknown[0]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(args)
    except SystemExit as e:
        if e.code not in (0, None):  # --help and --version exit 0
            return err.getvalue().strip() or f"exit {e.code}"
    return None


def _sessions(noxfile: str) -> set[str]:
    """The session names a noxfile defines (``@nox.session`` functions, or their ``name=``)."""
    names = set(re.findall(r"@nox\.session(?:\([^)]*\))?\s*\ndef (\w+)", noxfile))
    names |= set(re.findall(r"@nox\.session\([^)]*name=\"([^\"]+)\"", noxfile))
    return names


def _nox_problem(args: tuple[str, ...]) -> str | None:
    """nox's own parser takes ``args``, and each ``-s`` session is defined by repro-build's noxfile (README) or
    by the one ``init`` writes (the how-tos and the tutorial's project)."""
    import nox._options  # nox's parser: the one `nox` runs

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parsed = nox._options.options.parser().parse_args(list(args))
    except SystemExit:
        return err.getvalue().strip()
    from reprobuild.init import nox_session_text

    generated = nox_session_text()  # the `build` session `init` writes into a project's noxfile
    known = _sessions((REPO / "noxfile.py").read_text()) | _sessions(generated)
    missing = [s for s in parsed.sessions or [] if s not in known]
    return f"no nox session {', '.join(missing)} (known: {', '.join(sorted(known))})" if missing else None


def test_commands_are_found() -> None:
    """The scan sees the commands it must (so a broken scanner cannot pass the tests below vacuously)."""
    found = {(c.file, " ".join(c.argv)) for c in COMMANDS_IN_DOCS}
    assert ("docs/tutorial.md", "repro-build image --load") in found
    assert ("README.md", "nox -s build") in found  # after `pip install nox &&`
    assert (
        "docs/how-to/verify-before-deploy.md",
        'repro-build verify build/cpu/manifest.json --image "$PINNED_REF"',
    ) not in found
    assert (
        "docs/how-to/verify-before-deploy.md",
        "repro-build verify build/cpu/manifest.json --image $PINNED_REF",
    ) in found
    assert any(c.file == "docs/how-to/offline-rebuild.md" and c.env for c in COMMANDS_IN_DOCS)  # `VAR=x repro-build`
    assert len(COMMANDS_IN_DOCS) >= 50
    assert not any(" ".join(c.argv).startswith("repro-build 0.1.0") for c in COMMANDS_IN_DOCS)  # output, not a command


def test_every_command_has_a_kind_and_every_kind_is_used() -> None:
    unclassified = [str(c) for c in COMMANDS_IN_DOCS if kind_of(c) is None]
    assert not unclassified, (
        "add each to KINDS in tests/docscommands.py (run it in a test, or say why not):\n" + "\n".join(unclassified)
    )
    used = {id(kind_of(c)) for c in COMMANDS_IN_DOCS}
    stale = [k.pattern for k in KINDS if id(k) not in used]
    assert not stale, f"KINDS entries that match no command of the docs: {stale}"


def test_the_parser_check_can_fail() -> None:
    assert parse_problem(("repro-build", "copy", "--no-attachmnets", "a", "b")) is not None
    assert parse_problem(("repro-build", "imgae")) is not None
    assert parse_problem(("repro-build", "verify")) is None  # MANIFEST is optional with --image; verify says so itself
    assert parse_problem(("repro-build", "--version")) is None
    assert parse_problem(("nox", "-s", "buidl")) is not None
    assert parse_problem(("nox", "--sesions", "build")) is not None


@pytest.mark.parametrize("command", COMMANDS_IN_DOCS, ids=_id)
def test_the_real_parser_takes_it(command: DocCommand) -> None:
    problem = parse_problem(command.argv)
    assert problem is None, f"{command}: {problem}"


# ------------------------------------------------------------------------------------ the tutorial, run


def _steps(markdown: str) -> Iterator[tuple[str, str, str]]:
    """The tutorial's steps in order: ("file", path, content) for a block introduced by a line "`PATH`:", and
    ("run", command line, the output the docs show) for each ``$`` line of a console block."""
    lines = markdown.splitlines()
    i = 0
    previous = ""
    while i < len(lines):
        fence = re.match(r"^```(\w*)$", lines[i])
        if not fence:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        end = lines.index("```", i + 1)
        body = lines[i + 1 : end]
        named = re.fullmatch(r"`([^`]+)`:", previous)
        if named and fence.group(1) != "console":
            yield "file", named.group(1), "\n".join(body) + "\n"
        elif fence.group(1) == "console":
            j = 0
            while j < len(body):
                if body[j].startswith("$ "):
                    output = []
                    k = j + 1
                    while k < len(body) and not body[k].startswith("$ "):
                        output.append(body[k])
                        k += 1
                    yield "run", body[j][2:], "\n".join(output)
                    j = k
                else:
                    j += 1
        previous = ""
        i = end + 1


#: Lines of the docs' output that a run must print too (digests, sizes and timings aside).
_CHECKED_OUTPUT = re.compile(
    r"^(verified: |match: |locks are current|updated |created |policy met|sum: |repro-build \d)"
)


#: For the how-tos' commands run after the tutorial: what `copy` and the gate say (their builds differ from the
#: tutorial's: `verify manifest.json` of sbom-and-provenance.md shows repro-build's own image, 30 artifacts).
_CHECKED_AFTER = re.compile(r"^(\d+ attachments copied: |warning: .* keeps no attachments|match: )")


def _normalized(text: str) -> str:
    return re.sub(r"sha256([:-])[0-9a-f]{64}", r"sha256\1…", text)


class Shell:
    """Runs doc command lines in order with bash, keeping the working directory across them (``cd``)."""

    def __init__(self, cwd: Path, env: dict[str, str], substitute: Callable[[str], str]) -> None:
        self.cwd = cwd
        self.env = env
        self.substitute = substitute
        self.ran: list[str] = []

    def run(self, line: str, *, expect: int = 0) -> str:
        line = self.substitute(line)
        marker = self.cwd / ".." / f".cwd-{uuid.uuid4().hex}"
        script = f"{line}\nrc=$?\npwd > {shlex.quote(str(marker))}\nexit $rc\n"
        out = subprocess.run(
            ["bash", "-c", script], cwd=self.cwd, env=self.env, capture_output=True, text=True, check=False, timeout=900
        )
        self.cwd = Path(marker.read_text().strip())
        marker.unlink()
        self.ran.append(line)
        assert out.returncode == expect, f"`{line}` exited {out.returncode}, not {expect}:\n{out.stdout}\n{out.stderr}"
        return out.stdout + out.stderr


def _check_output(line: str, shown: str, printed: str, checked: re.Pattern[str] = _CHECKED_OUTPUT) -> None:
    printed_lines = {_normalized(p.strip()) for p in printed.splitlines()}
    for expected in shown.splitlines():
        if checked.match(expected.strip()):
            assert _normalized(expected.strip()) in printed_lines, f"`{line}` did not print {expected!r}:\n{printed}"


@pytest.mark.network
@pytest.mark.engine
@pytest.mark.registry
@pytest.mark.slow
def test_the_tutorial_runs_end_to_end(tmp_path: Path, engine: Engine, registry: Registry) -> None:
    """docs/tutorial.md, every step in order, in an empty directory; then the how-tos' commands that run against
    the loopback registry and the engine (KINDS says which), on the tutorial's project and build.

    The one change to the commands: the engine is shared, so the image is loaded under a tag of this run
    (`--tag`), and `my-app:cpu` in the commands that name the engine's image becomes that tag. The how-tos'
    127.0.0.1:5055 and /tmp/tut become the loopback registry and a directory of this test.
    """
    tag = f"repro-build-test/tutorial:{uuid.uuid4().hex[:10]}"
    bindir = str(Path(sys.executable).parent)  # `repro-build` of this checkout
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ.get('PATH', '')}",
        "GIT_AUTHOR_NAME": "Tutorial",
        "GIT_AUTHOR_EMAIL": "tutorial@example.invalid",
        "GIT_COMMITTER_NAME": "Tutorial",
        "GIT_COMMITTER_EMAIL": "tutorial@example.invalid",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "NO_COLOR": "1",
    }
    env.pop("SOURCE_DATE_EPOCH", None)
    tut = tmp_path / "tut"
    tut.mkdir()

    def substitute(text: str) -> str:
        text = re.sub(r"^repro-build image (--load|--smoke)$", rf"repro-build image \1 --tag {tag}", text, flags=re.M)
        text = re.sub(r"(docker-daemon:| )my-app:cpu(?![\w.-])", rf"\g<1>{tag}", text)
        return text.replace("127.0.0.1:5055", registry.host).replace("/tmp/tut", str(tut))

    shell = Shell(tut, env, substitute)
    ran_tutorial: list[str] = []
    try:
        for step, what, content in _steps((DOCS / "tutorial.md").read_text()):
            if step == "file":
                (shell.cwd / what).parent.mkdir(parents=True, exist_ok=True)
                (shell.cwd / what).write_text(content)
            elif what == "pip install .":
                continue  # this checkout is installed already: `repro-build` is the one on PATH
            else:
                printed = shell.run(what)
                _check_output(what, substitute(content), printed)
                ran_tutorial.append(what)
        tutorial = [" ".join(c.argv) for c in COMMANDS_IN_DOCS if c.file == "docs/tutorial.md"]
        assert [shlex.join(shlex.split(r)) for r in ran_tutorial if r.startswith("repro-build")] == tutorial
        project = shell.cwd
        assert (project / "build" / "cpu" / "manifest.json").is_file()

        # The how-tos, in an order that keeps the work tree clean for the builds (`sbom-and-provenance` writes
        # `manifest.json` and `mirror/` into it) and pushes before the gate checks.
        order = ["push-and-mirror", "verify-before-deploy", "sbom-and-provenance"]
        after = [c for c in COMMANDS_IN_DOCS if (k := kind_of(c)) is not None and k.why == RUN_AFTER]
        after.sort(key=lambda c: (order.index(Path(c.file).stem), c.line))
        checked = 0
        assert {Path(c.file).stem for c in after} == set(order)
        shown = {
            (stem, line): output
            for stem in order
            for step, line, output in _steps((DOCS / "how-to" / f"{stem}.md").read_text())
            if step == "run"
        }
        for command in after:
            # The copy out of the engine gets a new digest, so the gate refuses it (exit 1), as the how-to says.
            expect = 1 if command.argv[-1].endswith("/my-app:from-engine") and command.argv[1] == "verify" else 0
            shell.cwd = project
            printed = shell.run(command.text, expect=expect)
            output = shown.get((Path(command.file).stem, command.text), "")
            _check_output(command.text, substitute(output), printed, _CHECKED_AFTER)
            checked += sum(1 for line in output.splitlines() if _CHECKED_AFTER.match(line.strip()))
        assert checked >= 4  # push-and-mirror: the attachments line, the archive warning; two gates: `match:`
    finally:
        subprocess.run([engine.cli, "rmi", "-f", tag], capture_output=True, check=False)
    assert {k.why for k in KINDS if k.kind == "run"} >= {RUN_TUTORIAL, RUN_AFTER}
