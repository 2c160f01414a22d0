"""Error discipline: specific classes, library exceptions caught by their real types, nothing rewrapped away."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests.exceptions

from reprobuild import errors
from reprobuild.errors import EngineError, ReproBuildError
from reprobuild.image.smoke import SmokeTestError, run_smoke
from reprobuild.manifest import gate
from reprobuild.oci import engine
from reprobuild.oci.location import parse_location
from tests.testbed import Engine

SRC = Path(__file__).parents[2] / "src" / "reprobuild"

#: ``except Exception`` where it is the point: the CLI's last-resort handler (it prints the traceback as a
#: bug), and code that runs inside the user's image or interpreter, where a broken framework must not
#: stop the program (the determinism hook, its self-test and its report).
BROAD_EXCEPT_ALLOWED = {
    "cli/main.py",
    "determinism/hook.py",
    "determinism/hookdoctor.py",
    "determinism/hookfacts.py",
    "determinism/selftest.py",
}


def _modules() -> list[tuple[str, ast.Module]]:
    return [(p.relative_to(SRC).as_posix(), ast.parse(p.read_text(), str(p))) for p in sorted(SRC.rglob("*.py"))]


def test_no_bare_base_class_is_raised() -> None:
    """Every raise names a specific class (a package's own, or what failed: a tool, the engine, a digest)."""
    bare = [
        f"{rel}:{node.lineno}"
        for rel, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and isinstance(node.exc.func, ast.Name)
        and node.exc.func.id == "ReproBuildError"
    ]
    assert bare == []


def _swallows(handler: ast.ExceptHandler) -> bool:
    """A handler for every exception that does not end by re-raising it (cleanup then ``raise`` is fine)."""
    broad = handler.type is None or (
        isinstance(handler.type, ast.Name) and handler.type.id in {"Exception", "BaseException"}
    )
    reraises = isinstance(handler.body[-1], ast.Raise) and handler.body[-1].exc is None
    return broad and not reraises


def test_no_broad_except_outside_the_allowed_places() -> None:
    broad = [
        f"{rel}:{node.lineno}"
        for rel, tree in _modules()
        if rel not in BROAD_EXCEPT_ALLOWED
        for node in ast.walk(tree)
        if isinstance(node, ast.ExceptHandler) and _swallows(node)
    ]
    assert broad == []


def test_every_package_error_keeps_the_hint_and_exit_code_of_the_hierarchy() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, ReproBuildError)]
    assert {"AttestError", "ImageError", "ManifestError", "DockerfileError", "TemplateError", "UsageError"} <= {
        c.__name__ for c in classes
    }
    for cls in classes:
        e = cls("what failed", hint="what to do")
        assert (e.message, e.hint) == ("what failed", "what to do")
        assert e.exit_code == (1 if cls is errors.StaleLockError else 2)
        assert type(e.with_context("where")) is cls


class _Raising:
    """An SDK collection (``images``, ``containers``) whose calls raise ``exc``."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def get(self, *args: object, **kwargs: object) -> Any:
        raise self.exc

    def create(self, *args: object, **kwargs: object) -> Any:
        raise self.exc


class _Client:
    """A docker SDK client whose every call raises ``exc``."""

    def __init__(self, exc: Exception) -> None:
        self.images = self.containers = _Raising(exc)


def _engine_raising(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    monkeypatch.setattr(engine, "connect", lambda: _Client(exc))


def test_gate_says_the_engine_has_no_image_only_when_it_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    loc = parse_location("docker-daemon:repro-build-test/errors:none")
    _engine_raising(monkeypatch, docker.errors.ImageNotFound("No such image"))
    with pytest.raises(EngineError, match="the engine has no image repro-build-test/errors:none") as e:
        gate._engine(loc)
    assert e.value.hint is not None and "docker load" in e.value.hint
    _engine_raising(monkeypatch, requests.exceptions.ConnectionError("socket closed"))
    with pytest.raises(EngineError, match=r"asking the engine for the image .* failed: socket closed"):
        gate._engine(loc)
    # A bug (here a TypeError out of the SDK call) is not reported as a missing image: it surfaces.
    _engine_raising(monkeypatch, TypeError("unexpected keyword"))
    with pytest.raises(TypeError):
        gate._engine(loc)


def test_smoke_turns_engine_errors_into_a_failed_test_and_leaves_bugs_alone() -> None:
    with pytest.raises(SmokeTestError, match=r"could not start: .*no such image"):
        run_smoke(_Client(docker.errors.APIError("no such image")), "sha256:0", ("true",), target="cpu")
    with pytest.raises(KeyError):
        run_smoke(_Client(KeyError("bug")), "sha256:0", ("true",), target="cpu")


@pytest.mark.engine
def test_real_engine_missing_image_is_an_engine_error(engine: Engine) -> None:
    loc = parse_location("docker-daemon:repro-build-test/errors-never-loaded:missing")
    with pytest.raises(EngineError, match="the engine has no image"):
        gate._engine(loc)
