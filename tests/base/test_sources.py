"""The machine's apt sources (deb822 and one-line), redaction and snapshot time stamps."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.base.debian.sources import (
    default_mirror,
    machine_sources,
    parse_deb822,
    parse_one_line,
    snapshot_timestamp,
)
from reprobuild.errors import BaseImageError
from reprobuild.urls import redact

DEB822 = """\
Types: deb deb-src
# a comment line
URIs: http://mirror.invalid/debian http://second.invalid/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
Enabled: no
URIs: http://disabled.invalid/debian
Suites: bookworm
Components: main

Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm
Components: main
"""


def test_deb822() -> None:
    found = parse_deb822(DEB822, "x.sources")
    assert [s.uri for s in found] == ["http://mirror.invalid/debian", "http://second.invalid/debian"]
    assert found[0].suites == ("bookworm", "bookworm-updates")
    assert found[0].components == ("main", "contrib")


def test_one_line() -> None:
    text = (
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://a.invalid/debian bookworm main\n"
        "deb-src http://b.invalid/debian bookworm main\ndeb http://c.invalid/debian trixie main # tail\n"
    )
    found = parse_one_line(text, "sources.list")
    assert [(s.uri, s.suites) for s in found] == [
        ("http://a.invalid/debian", ("bookworm",)),
        ("http://c.invalid/debian", ("trixie",)),
    ]


def test_one_line_error_names_the_line() -> None:
    with pytest.raises(BaseImageError, match=r"sources.list, line 2"):
        parse_one_line("\ndeb http://a.invalid/debian\n", "sources.list")


def test_default_mirror_from_a_root(tmp_path: Path) -> None:
    apt = tmp_path / "etc" / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("deb http://first.invalid/debian trixie main\n")
    (apt / "sources.list.d" / "debian.sources").write_text(DEB822)
    (apt / "sources.list.d" / "other.list.disabled").write_text("deb http://no.invalid/debian bookworm main\n")
    assert len(machine_sources(tmp_path)) == 3
    assert default_mirror("bookworm", tmp_path) == "http://mirror.invalid/debian"
    assert default_mirror("trixie", tmp_path) == "http://first.invalid/debian"
    with pytest.raises(BaseImageError, match="no apt source on this machine carries the suite `sid`") as e:
        default_mirror("sid", tmp_path)
    assert e.value.hint is not None and "--mirror" in e.value.hint


def test_redact_and_snapshot() -> None:
    assert redact("https://user:s3cret@mirror.invalid:8443/debian") == "https://mirror.invalid:8443/debian"
    assert redact("http://mirror.invalid/debian") == "http://mirror.invalid/debian"
    assert snapshot_timestamp("http://snap.invalid/archive/debian/20250520T000000Z") == "20250520T000000Z"
    assert snapshot_timestamp("http://snap.invalid/archive/debian/20250520T000000Z/") == "20250520T000000Z"
    assert snapshot_timestamp("http://mirror.invalid/debian") is None
