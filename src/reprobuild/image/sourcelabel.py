"""``org.opencontainers.image.source``: from the project, never from how this clone was made.

The label names the project's public repository. It comes from ``[project.urls]`` (the first of
``Source``, ``Repository``, ``Homepage``; labels compared as PEP 753 normalises them: case, spaces and
punctuation ignored), else from the ``origin`` remote reduced to one public form
(:func:`reprobuild.urls.repository_url`: ssh and https clones of one repository give one URL, with
no credentials, ``.git`` or trailing slash). A local path or ``file://`` remote is never used: such a
clone gets no label, and the build log and manifest say why. So clones of one commit over ssh, over
https or from a local path with ``[project.urls]`` set give one image digest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from reprobuild.urls import repository_url

#: ``[project.urls]`` labels that name the source repository, in order of preference.
URL_KEYS = ("source", "repository", "homepage")


@dataclass(frozen=True)
class SourceLabel:
    """The label's value (None: no label) and where it came from, or why there is none."""

    url: str | None
    origin: str | None  # "project.urls.<Key>" or "git remote origin"
    note: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"from": self.origin, "note": self.note, "url": self.url}


def _normalise_label(key: str) -> str:
    """PEP 753: lowercase, punctuation and whitespace removed."""
    return re.sub(r"[\s\W_]+", "", key.lower())


def source_label(urls: Mapping[str, str], remote: str | None) -> SourceLabel:
    """The image's source label for a project with ``[project.urls]`` ``urls`` and ``origin`` ``remote``."""
    by_label = {_normalise_label(k): (k, v) for k, v in sorted(urls.items())}
    skipped: list[str] = []
    for wanted in URL_KEYS:
        if wanted in by_label:
            key, value = by_label[wanted]
            url = repository_url(value, require_path=False)
            if url is not None:
                return SourceLabel(url, f"project.urls.{key}")
            skipped.append(f"`project.urls.{key}` is not a network URL")
    if remote is None:
        return SourceLabel(None, None, "; ".join([*skipped, "no `origin` remote and no `[project.urls]` Source"]))
    url = repository_url(remote)
    if url is None:
        note = "the `origin` remote is a local path or not a network URL: no source label"
        return SourceLabel(None, None, "; ".join([*skipped, note]))
    return SourceLabel(url, "git remote origin")
