"""Keeping credentials out of everything repro-build writes or prints: locks, manifests, labels, logs.

One redaction path: :func:`redact` for a URL, :func:`redact_reference` for an image reference that
carries ``user:password@``, and :func:`redact_text` for any message (it applies both to everything in
the text, and hides the values of ``Basic``/``Bearer`` authorization, base64 forms included). The CLI
passes every error and log line through :func:`redact_text`.
"""

from __future__ import annotations

import base64
import re
import urllib.parse

_URL_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)
#: ``user:password@`` in front of a registry host (no scheme): what a reference must never carry. The
#: ``@`` of a digest (``name:tag@sha256:…``) is not userinfo.
_USERINFO_RE = re.compile(r"(?<![\w.@/:+-])[^\s/@:'\"<>]+:[^\s/@'\"<>]*@(?!sha(?:256|512):)(?=[A-Za-z0-9\[])")
#: An ``Authorization`` value as a server might echo it: the scheme stays, the credential goes.
_AUTH_VALUE_RE = re.compile(r"\b(Basic|Bearer)(\s+|%20)[A-Za-z0-9+/=._~-]{4,}", re.IGNORECASE)
HIDDEN = "<hidden>"


def redact(url: str) -> str:
    """``url`` without ``user:password@`` (what may be written to a lock, a manifest or a log)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact_reference(text: str) -> str:
    """An image reference (or any text) without ``user:password@`` in front of a host."""
    return _USERINFO_RE.sub(f"{HIDDEN}@", text)


def has_userinfo(text: str) -> bool:
    """True when ``text`` carries ``user:password@`` (as a URL or in front of a registry host)."""
    if _USERINFO_RE.search(text):
        return True
    return any(redact(m.group(0)) != m.group(0) for m in _URL_RE.finditer(text))


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` (an error message, a server's answer) with every URL and reference redacted, the values
    of ``Basic``/``Bearer`` authorization hidden, and each of ``secrets`` hidden in plain and base64 form.
    """
    text = _URL_RE.sub(lambda m: redact(m.group(0)), text)
    text = redact_reference(text)
    text = _AUTH_VALUE_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", text)
    for secret in secrets:
        if not secret:
            continue
        for form in _forms(secret):
            text = text.replace(form, HIDDEN)
    return text


def _forms(secret: str) -> list[str]:
    """``secret`` as it is and as base64 (with and without padding), longest first."""
    encoded = base64.b64encode(secret.encode()).decode()
    return sorted({secret, encoded, encoded.rstrip("=")}, key=len, reverse=True)


#: ``[user@]host:path`` (git's scp-like syntax): a colon before any slash, no ``scheme://``.
_SCP_RE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<path>(?!//)[^\\]+)$")
_NETWORK_SCHEMES = {"https", "http", "ssh", "git", "git+ssh", "ssh+git", "git+https"}


def repository_url(url: str, *, require_path: bool = True) -> str | None:
    """One public ``https://host/org/app`` for every network form of a repository URL, else None.

    ``git@host:org/app.git``, ``ssh://git@host:22/org/app.git``, ``git://host/org/app`` and
    ``https://user:token@host/org/app.git/`` all give ``https://host/org/app``: credentials, the ssh
    user and port, ``.git``, trailing slashes, query and fragment are dropped, the host is lowercased.
    A local path or a ``file://`` URL is not a public source and gives None, as does anything without
    a host (and, with ``require_path``, without a path: a bare host names no repository).
    """
    text = url.strip()
    if "://" in text:
        parts = urllib.parse.urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in _NETWORK_SCHEMES or not parts.hostname:
            return None
        host = parts.hostname.lower()
        try:
            port = parts.port
        except ValueError:
            return None
        if port is not None and scheme in ("https", "http", "git+https") and port not in (80, 443):
            host = f"{host}:{port}"
        path = parts.path
    else:
        m = _SCP_RE.match(text)
        if m is None or text.startswith(("/", ".", "~")):
            return None  # a local path
        host, path = m.group("host").lower(), m.group("path")
    path = path.strip("/")
    while path.endswith((".git", "/")):
        path = path.removesuffix(".git").rstrip("/")
    path = path.lstrip("~")
    if require_path and not path:
        return None
    return f"https://{host}/{path}" if path else f"https://{host}"
