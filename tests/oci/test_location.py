"""The one image-location grammar: every form, hostile forms, and a path on disk never going to a registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprobuild.cli.main import main
from reprobuild.errors import ConfigError, OCIError
from reprobuild.oci.archive import write_archive
from reprobuild.oci.digest import Digest
from reprobuild.oci.layout import write_layout
from reprobuild.oci.location import TRANSPORTS, Location, parse_location, without_transport
from tests.oci.helpers import small_image

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "kind", "path", "tag", "digest"),
    [
        ("oci:build/cpu/oci", "oci-layout", "build/cpu/oci", None, None),
        ("oci:build/cpu/oci:v1", "oci-layout", "build/cpu/oci", "v1", None),
        (f"oci:/abs/dir@{D}", "oci-layout", "/abs/dir", None, D),
        ("oci-layout:/a/b:v1", "oci-layout", "/a/b", "v1", None),
        ("oci-archive:img.tar", "oci-archive", "img.tar", None, None),
        ("oci-archive:img.tar:cpu", "oci-archive", "img.tar", "cpu", None),
        (f"oci-archive:img.tar@{D}", "oci-archive", "img.tar", None, D),
        ("docker-archive:vendor/base.tar", "docker-archive", "vendor/base.tar", None, None),
        (f"docker-archive:vendor/base.tar@{D}", "docker-archive", "vendor/base.tar", None, D),
        ("oci:dir:with:colons", "oci-layout", "dir:with", "colons", None),
    ],
)
def test_path_transports(text: str, kind: str, path: str, tag: str | None, digest: str | None) -> None:
    loc = parse_location(text)
    assert (loc.kind, str(loc.path), loc.tag, str(loc.digest) if loc.digest else None) == (kind, path, tag, digest)
    assert loc.is_local and loc.is_archive == kind.endswith("archive")


def test_engine_and_registry_forms() -> None:
    assert parse_location("docker-daemon:app").name == "app:latest"
    assert parse_location("docker-daemon:team/app:cpu").name == "team/app:cpu"
    reg = parse_location("docker://127.0.0.1:5000/a/b:t")
    assert reg.kind == "registry" and reg.reference is not None and reg.reference.registry == "127.0.0.1:5000"
    plain = parse_location(f"ghcr.io/org/app@{D}")
    assert plain.kind == "registry" and plain.digest == Digest.parse(D) and not plain.is_local
    hub = parse_location("docker://python:3.11-slim")
    assert hub.reference is not None and hub.reference.name == "docker.io/library/python" and hub.tag == "3.11-slim"
    pinned_hub = parse_location(f"python:3.11-slim@{D}")
    assert pinned_hub.reference is not None and pinned_hub.reference.api_host == "registry-1.docker.io"
    v6 = parse_location("[::1]:5000/a/b:t")
    assert v6.reference is not None and v6.reference.registry == "[::1]:5000"


def _layout(where: Path, tmp_path: Path) -> str:
    image = small_image(tmp_path / "staging")
    write_layout(where, image, tag="v1")
    return str(image.digest)


def test_bare_existing_directory_and_tar_are_local(tmp_path: Path) -> None:
    digest = _layout(tmp_path / "build" / "cpu" / "oci", tmp_path)
    write_archive(tmp_path / "image.tar", small_image(tmp_path / "staging"), tag="v1")
    for text, relative_to in (("build/cpu/oci", tmp_path), (str(tmp_path / "build/cpu/oci"), None)):
        loc = parse_location(text, relative_to=relative_to)
        assert (loc.kind, loc.tag, loc.digest) == ("oci-layout", None, None)
    assert parse_location("build/cpu/oci:v1", relative_to=tmp_path).tag == "v1"
    assert parse_location(f"build/cpu/oci@{digest}", relative_to=tmp_path).digest == Digest.parse(digest)
    archive = parse_location("image.tar", relative_to=tmp_path)
    assert (archive.kind, str(archive.path)) == ("oci-archive", "image.tar")
    assert parse_location("image.tar:v1", relative_to=tmp_path).tag == "v1"


def test_a_path_that_is_no_image_is_refused_not_sent_to_a_registry(tmp_path: Path) -> None:
    (tmp_path / "ubuntu").mkdir()
    (tmp_path / "notes").write_text("x")
    with pytest.raises(ConfigError) as err:
        parse_location("ubuntu", relative_to=tmp_path)
    assert "not an OCI image layout" in err.value.message and err.value.hint and "docker://ubuntu" in err.value.hint
    with pytest.raises(ConfigError) as err:
        parse_location("notes", relative_to=tmp_path)
    assert "not a `.tar` archive" in err.value.message and err.value.hint and "oci-archive:notes" in err.value.hint
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError, match="dangling"):
        parse_location("dangling", relative_to=tmp_path)
    with pytest.raises(ConfigError, match="home directory this machine does not have"):
        parse_location("~no-such-user-repro-build/x", relative_to=tmp_path)
    with pytest.raises(ConfigError, match="home directory this machine does not have"):
        parse_location("oci:~no-such-user-repro-build/x")
    for missing in ("./nowhere", "../nowhere", "/nowhere/at/all", "~/nowhere-repro-build"):
        with pytest.raises(ConfigError, match="does not exist"):
            parse_location(missing, relative_to=tmp_path)
    # A name that is not on disk is a registry reference, as in every Docker client.
    assert parse_location("ghcr.io/org/ubuntu:1", relative_to=tmp_path).kind == "registry"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "non-empty line"),
        ("oci:dir\n--other", "non-empty line"),
        ("oci:dir\x00", "non-empty line"),
        ("oci:", "has no path"),
        ("oci-archive:@" + D, "has no path"),
        ("oci:dir@sha256:abc", "is not a sha256 digest"),
        ("oci:dir@sha512:" + "ab" * 64, "sha256 digests only"),
        ("docker-daemon:app@" + D, "not by digest"),
        ("ftp://host/repo:1", "not a known transport"),
        ("oci-layuot:build/cpu/oci", "not a known transport"),
        ("oci-layuot:dir", "not a known transport"),
        ("python:3.11", "not a known transport"),
        ("https://user:secret@ghcr.io/a/b", "carries credentials"),
        ("ghcr.io/Org/App:1", "not a valid image name"),
        ("ghcr.io/org/app:-bad", "invalid tag"),
        ("x" * 5000 + "/y", "not a valid image name"),
    ],
)
def test_hostile_forms_get_one_clear_error(text: str, message: str) -> None:
    with pytest.raises((ConfigError, OCIError)) as err:
        parse_location(text)
    assert message in err.value.message
    assert "secret" not in err.value.message


def test_str_round_trips() -> None:
    for text in ("oci-layout:a/b:v1", f"oci-archive:x.tar@{D}", "docker-archive:x.tar", "docker-daemon:app:cpu"):
        assert str(parse_location(text)) == text
    assert str(parse_location("docker://ghcr.io/a/b:1")) == "ghcr.io/a/b:1"
    assert Location("oci-layout", Path("d")).pinned(Digest.parse(D)) == f"oci-layout:d@{D}"


@pytest.fixture
def no_registry(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every RegistryClient made is recorded and refused: a local path must never reach one."""
    from reprobuild.oci.registry import client

    made: list[str] = []

    def refuse(self: object, host: str, **_: object) -> None:
        made.append(host)
        raise AssertionError(f"a registry client for {host} was made")

    monkeypatch.setattr(client.RegistryClient, "__init__", refuse)
    return made


def test_inspect_copy_diff_take_every_local_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_registry: list[str]
) -> None:
    digest = _layout(tmp_path / "build" / "cpu" / "oci", tmp_path)
    monkeypatch.chdir(tmp_path)
    forms = ["build/cpu/oci", "build/cpu/oci:v1", "oci:build/cpu/oci", f"oci-layout:build/cpu/oci@{digest}"]
    for form in forms:
        assert main(["--quiet", "inspect", "--json", form]) == 0, capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["manifest_digest"] == digest
    assert main(["--quiet", "copy", "build/cpu/oci", "docker-archive:out.tar"]) == 0
    assert capsys.readouterr().out.strip() == f"docker-archive:out.tar@{digest}"
    for form in ("out.tar", "oci-archive:out.tar", "docker-archive:out.tar"):
        assert main(["--quiet", "inspect", "--json", form]) == 0, capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["manifest_digest"] == digest
    assert main(["--quiet", "diff", "build/cpu/oci", "out.tar"]) == 0, capsys.readouterr().err
    assert no_registry == []


def test_inspect_of_a_missing_or_plain_directory_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_registry: list[str]
) -> None:
    (tmp_path / "plain").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", "plain"]) == 2
    err = capsys.readouterr().err
    assert "not an OCI image layout" in err and "Traceback" not in err
    assert main(["inspect", "./build/cpu/oci"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert no_registry == []


def test_without_transport_knows_every_transport_of_the_grammar() -> None:
    for prefix in TRANSPORTS:
        assert without_transport(f"{prefix}x/y") == "x/y", prefix
    assert without_transport("registry.example/x/y:1") == "registry.example/x/y:1"
    # Each transport parse_location reads is one without_transport strips.
    for text in ("oci:d", "oci-layout:d", "oci-archive:f.tar", "docker-archive:f.tar", "docker-daemon:n:1"):
        assert any(text.startswith(p) for p in TRANSPORTS) and parse_location(text).kind != "registry"
