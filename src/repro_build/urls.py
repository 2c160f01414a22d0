"""Keeping credentials out of everything repro-build writes or prints: locks, manifests, labels, logs."""

from __future__ import annotations

import re
import urllib.parse

_URL_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)


def redact(url: str) -> str:
    """``url`` without ``user:password@`` (what may be written to a lock, a manifest or a log)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact_text(text: str) -> str:
    """``text`` (an error message, say) with every URL in it redacted."""
    return _URL_RE.sub(lambda m: redact(m.group(0)), text)


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
