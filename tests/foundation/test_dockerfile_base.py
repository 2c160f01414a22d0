from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.dockerfile_base import parse_dockerfile_base, rewrite_pins
from reprobuild.errors import ConfigError

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Dockerfile.base"
    path.write_text(text)
    return path


def test_stages_args_continuations_and_platform(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""# syntax=docker/dockerfile:1
ARG PY=3.11
FROM --platform=linux/amd64 python:${{PY}}-slim@{D1} AS cpu
FROM \\
    nvidia/cuda:12.4.1-runtime-ubuntu22.04@{D2} \\
    AS cuda
RUN echo ignored
FROM cpu AS app
FROM scratch AS empty
""",
    )
    df = parse_dockerfile_base(path)
    assert [s.name for s in df.stages] == ["cpu", "cuda", "app", "empty"]
    cpu = df.stages[0]
    assert cpu.reference is not None and cpu.reference.tag == "3.11-slim" and cpu.platform == "linux/amd64"
    assert df.stages[1].line == 4 and df.stages[1].reference is not None
    assert df.resolved("app").name == "cpu"
    assert df.unpinned() == []


def test_unnamed_stage_is_an_error_with_a_snippet(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_dockerfile_base(write(tmp_path, f"FROM python@{D1}\n"))
    assert "Dockerfile.base:1" in err.value.message
    assert err.value.hint and "AS cpu" in err.value.hint


def test_duplicate_stage(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="used twice"):
        parse_dockerfile_base(write(tmp_path, f"FROM a@{D1} AS x\nFROM b@{D2} AS x\n"))


def test_rewrite_pins_keeps_tag_and_everything_else(tmp_path: Path) -> None:
    original = "# keep me\nFROM python:3.11-slim AS cpu   \nFROM debian:12 AS other\n"
    path = write(tmp_path, original)
    assert [s.name for s in parse_dockerfile_base(path).unpinned()] == ["cpu", "other"]
    text = rewrite_pins(path, {"cpu": D1})
    assert text == f"# keep me\nFROM python:3.11-slim@{D1} AS cpu   \nFROM debian:12 AS other\n"
