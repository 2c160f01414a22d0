from __future__ import annotations

import pytest

from reprobuild.image.sourcelabel import source_label
from reprobuild.urls import redact, redact_text, repository_url


def test_redact_removes_userinfo_only() -> None:
    assert redact("https://user:s3cret@host.example:8443/a/b?q=1") == "https://host.example:8443/a/b?q=1"
    assert redact("https://host.example/simple") == "https://host.example/simple"
    assert redact("git@host.example:org/repo.git") == "git@host.example:org/repo.git"  # ssh: no password


def test_redact_text_scrubs_every_url_in_a_message() -> None:
    message = "GET https://u:tok@a.example/x failed, then http://v:pw@b.example:81/y too"
    assert redact_text(message) == "GET https://a.example/x failed, then http://b.example:81/y too"
    assert "tok" not in redact_text(message) and "pw" not in redact_text(message)


@pytest.mark.parametrize(
    "url",
    [
        "git@git.example.org:org/app.git",
        "git@git.example.org:org/app",
        "ssh://git@git.example.org/org/app.git",
        "ssh://git@Git.Example.org:2222/org/app.git/",
        "git+ssh://git@git.example.org/org/app.git",
        "https://git.example.org/org/app",
        "https://user:t0ken@git.example.org/org/app.git/",
        "http://git.example.org/org/app/",
        "git://git.example.org/org/app.git",
        "https://git.example.org/org/app.git?ref=main#readme",
    ],
)
def test_every_network_form_of_one_repository_is_one_url(url: str) -> None:
    assert repository_url(url) == "https://git.example.org/org/app"


@pytest.mark.parametrize(
    "url",
    ["/srv/git/app.git", "../app", "./app", "~/src/app", "file:///srv/git/app.git", "app", "https://host.example/", ""],
)
def test_local_paths_and_file_urls_are_never_a_source(url: str) -> None:
    assert repository_url(url) is None


def test_an_https_port_is_kept_an_ssh_port_is_not() -> None:
    assert repository_url("https://git.example.org:8443/org/app.git") == "https://git.example.org:8443/org/app"
    assert repository_url("ssh://git@git.example.org:8443/org/app.git") == "https://git.example.org/org/app"


def test_source_label_prefers_project_urls_in_order() -> None:
    urls = {"Homepage": "https://app.example.org/", "REPOSITORY": "https://git.example.org/org/app.git"}
    label = source_label(urls, "git@elsewhere.example:fork/app.git")
    assert (label.url, label.origin) == ("https://git.example.org/org/app", "project.urls.REPOSITORY")
    label = source_label({**urls, "Source Code": "x", "source": "git@git.example.org:org/src.git"}, None)
    assert (label.url, label.origin) == ("https://git.example.org/org/src", "project.urls.source")
    assert source_label({"Homepage": "https://app.example.org/"}, None).url == "https://app.example.org"


def test_source_label_from_origin_or_none_with_a_reason() -> None:
    label = source_label({}, "https://u:tok@git.example.org/org/app.git")
    assert (label.url, label.origin, label.note) == ("https://git.example.org/org/app", "git remote origin", None)
    local = source_label({"Documentation": "https://docs.example.org"}, "/home/someone/src/app")
    assert local.url is None and local.note is not None and "local path" in local.note
    assert "/home/someone" not in local.note
    assert source_label({}, None).note == "no `origin` remote and no `[project.urls]` Source"
    odd = source_label({"Source": "file:///srv/app"}, None)
    assert odd.url is None and odd.note is not None and "`project.urls.Source` is not a network URL" in odd.note


def test_redact_text_hides_reference_userinfo_and_authorization_values() -> None:
    from reprobuild.urls import has_userinfo

    assert redact_text("pull user:S3cret@host/x:y") == "pull <hidden>@host/x:y"
    digest = "sha256:" + "a" * 64
    for ref in (f"host/x:y@{digest}", f"myimg:v1@{digest}", "git@host:org/repo"):
        assert redact_text(ref) == ref and not has_userinfo(ref)
    assert has_userinfo("user:pw@host/x") and has_userinfo("docker://u:p@h/x")
    assert redact_text("Authorization: Basic dXNlcjpTM2NyZXQ=") == "Authorization: Basic <hidden>"
    assert redact_text("bearer abc.def-ghi") == "bearer <hidden>"
    assert redact_text("echo dXNlcjpTM2NyZXQ and S3cret", ("S3cret", "user:S3cret")) == "echo <hidden> and <hidden>"
