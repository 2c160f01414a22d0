"""The standard OCI annotation set, from the project, the commit, the base and the epoch; nothing invented."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.config import load_config
from reprobuild.image.ocilabels import spdx_expression, standard_labels
from tests.foundation.helpers import write_project

P = "org.opencontainers.image."
FULL = """\
[project]
name = "Labelled"
version = "2.1.0"
description = "An app with every fact an image can carry"
license = "apache-2.0 OR mit"
requires-python = ">=3.11"
dependencies = []

[project.urls]
Homepage = "https://example.org/labelled"
"Docs" = "https://docs.example.org/labelled"
Source = "https://git.example.org/org/labelled.git"

[build-system]
requires = ["hatchling==1.33.0"]
build-backend = "hatchling.build"
"""


def _labels(root: Path, **overrides: str | None) -> dict[str, str]:
    config = load_config(root)
    values: dict[str, str | None] = {
        "created": "2023-11-14T22:13:20Z",
        "revision": "0123456789abcdef0123456789abcdef01234567",
        "source": "https://git.example.org/org/labelled",
        "base_digest": "sha256:" + "ab" * 32,
        **overrides,
    }
    return standard_labels(config, config.target("cpu"), **values)  # type: ignore[arg-type]


def test_the_full_set(tmp_path: Path) -> None:
    labels = _labels(write_project(tmp_path / "p", FULL))
    assert labels == {
        P + "base.digest": "sha256:" + "ab" * 32,
        P + "base.name": "debian:bookworm",
        P + "created": "2023-11-14T22:13:20Z",
        P + "description": "An app with every fact an image can carry",
        P + "documentation": "https://docs.example.org/labelled",
        P + "licenses": "Apache-2.0 OR MIT",  # canonical SPDX
        P + "revision": "0123456789abcdef0123456789abcdef01234567",
        P + "source": "https://git.example.org/org/labelled",
        P + "title": "Labelled",
        P + "url": "https://example.org/labelled",
        P + "version": "2.1.0",
    }
    assert list(labels) == sorted(labels)


MINIMAL = """\
[project]
name = "bare"
version = "0.1.0"
license = { text = "see LICENSE.txt" }
requires-python = ">=3.11"

[project.urls]
Changelog = "https://example.org/bare/changes"
"""


def test_unknown_facts_are_left_out(tmp_path: Path) -> None:
    # No description, a licence that is not an SPDX expression, no Homepage/Docs URL, no commit, no source.
    labels = _labels(write_project(tmp_path / "p", MINIMAL), revision=None, source=None)
    assert set(labels) == {P + k for k in ("base.digest", "base.name", "created", "title", "version")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("MIT", "MIT"), ("mit or apache-2.0", "MIT OR Apache-2.0"), ("BSD style", None), ("", None), (None, None)],
)
def test_licenses_only_as_spdx(text: str | None, expected: str | None) -> None:
    assert spdx_expression(text) == expected
