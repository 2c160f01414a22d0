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
