from __future__ import annotations

from repro_build.urls import redact, redact_text


def test_redact_removes_userinfo_only() -> None:
    assert redact("https://user:s3cret@host.example:8443/a/b?q=1") == "https://host.example:8443/a/b?q=1"
    assert redact("https://host.example/simple") == "https://host.example/simple"
    assert redact("git@host.example:org/repo.git") == "git@host.example:org/repo.git"  # ssh: no password


def test_redact_text_scrubs_every_url_in_a_message() -> None:
    message = "GET https://u:tok@a.example/x failed, then http://v:pw@b.example:81/y too"
    assert redact_text(message) == "GET https://a.example/x failed, then http://b.example:81/y too"
    assert "tok" not in redact_text(message) and "pw" not in redact_text(message)


def test_redact_text_hides_reference_userinfo_and_authorization_values() -> None:
    from repro_build.urls import has_userinfo

    assert redact_text("pull user:S3cret@host/x:y") == "pull <hidden>@host/x:y"
    digest = "sha256:" + "a" * 64
    for ref in (f"host/x:y@{digest}", f"myimg:v1@{digest}", "git@host:org/repo"):
        assert redact_text(ref) == ref and not has_userinfo(ref)
    assert has_userinfo("user:pw@host/x") and has_userinfo("docker://u:p@h/x")
    assert redact_text("Authorization: Basic dXNlcjpTM2NyZXQ=") == "Authorization: Basic <hidden>"
    assert redact_text("bearer abc.def-ghi") == "bearer <hidden>"
    assert redact_text("echo dXNlcjpTM2NyZXQ and S3cret", ("S3cret", "user:S3cret")) == "echo <hidden> and <hidden>"
