from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reprobuild.errors import ConfigError
from reprobuild.oci.reference import parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("python:3.11-slim", "docker.io", "library/python", "3.11-slim", None),
        (f"python:3.11-slim@{DIGEST}", "docker.io", "library/python", "3.11-slim", DIGEST),
        (f"nvidia/cuda@{DIGEST}", "docker.io", "nvidia/cuda", None, DIGEST),
        ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000", "team/app", "v1", None),
        ("localhost/app", "localhost", "app", None, None),
        ("ghcr.io/org/img:1.0", "ghcr.io", "org/img", "1.0", None),
        ("index.docker.io/library/debian:12", "docker.io", "library/debian", "12", None),
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.pinned == (digest is not None)


def test_ref_prefers_digest_and_defaults_to_latest() -> None:
    assert parse_reference(f"a:b@{DIGEST}").ref == DIGEST
    assert parse_reference("a").ref == "latest"
    assert parse_reference("a").api_host == "registry-1.docker.io"
    assert parse_reference("127.0.0.1:5000/a").api_host == "127.0.0.1:5000"


@pytest.mark.parametrize("bad", ["Python:3", "a@sha256:abc", "a:b c", "a//b", "a:-x", ""])
def test_malformed_references_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_reference(bad)


@given(
    st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True),
    st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)),
)
def test_str_round_trips(name: str, tag: str | None) -> None:
    text = name + (f":{tag}" if tag else "") + f"@{DIGEST}"
    ref = parse_reference(text)
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ghcr.io/a/b:1\n", "invalid tag"),
        (f"ghcr.io/a/b@{DIGEST}\n", "malformed digest"),
        ("ghcr.io/a/b\n", "not a valid image name"),
        ("ghcr.io/a/b:v\u00e9", "invalid tag"),
        ("ghcr.io/" + "a" * 250, "longer than 255"),
    ],
)
def test_hostile_references_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_reference(text)


def test_a_sha512_digest_is_a_valid_reference() -> None:
    """The image-spec registers sha512 too; a reference may carry one (repro-build's Digest is sha256 only)."""
    digest = "sha512:" + "cd" * 64
    assert parse_reference(f"ghcr.io/a/b@{digest}").digest == digest
    assert parse_reference("ghcr.io/" + "a" * 240).repository == "a" * 240
