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
