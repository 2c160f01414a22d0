"""One line about an attached document, for ``repro-build inspect``: what an SBOM counts, what a statement is about.

The document is data from wherever the image came from: it is parsed as JSON (size-bounded by the
caller), never trusted, and a document that does not have the expected shape gets a line that says so
instead of an error (``inspect`` shows what is there). The CLI escapes the text before a terminal sees it.
"""

from __future__ import annotations

import json
from typing import Any

from reprobuild.attest.carry import Attachment
from reprobuild.attest.referrers import CYCLONEDX_JSON, IN_TOTO_JSON, SPDX_JSON

#: Largest document read for a summary (an SBOM of a CUDA image is a few hundred KB).
MAX_SUMMARY_BYTES = 64 << 20

#: Longest piece of a document's own text (a name, a predicate type) a summary quotes.
_QUOTE_MAX = 80


def _text(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= _QUOTE_MAX else text[: _QUOTE_MAX - 3] + "..."


def _count(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key, [])
    return len(value) if isinstance(value, list) else None


def _spdx(obj: dict[str, Any]) -> str:
    packages = _count(obj, "packages")
    if packages is None:
        return "SPDX document whose `packages` is not a list"
    return f"{_text(obj.get('spdxVersion', 'SPDX'))}, {packages} packages"


def _cyclonedx(obj: dict[str, Any]) -> str:
    components = _count(obj, "components")
    if components is None:
        return "CycloneDX document whose `components` is not a list"
    return f"CycloneDX {_text(obj.get('specVersion', '?'))}, {components} components"


def _statement(obj: dict[str, Any]) -> str:
    predicate = _text(obj.get("predicateType", "no predicate type"))
    subjects = obj.get("subject")
    if not isinstance(subjects, list) or not subjects or not isinstance(subjects[0], dict):
        return f"in-toto statement ({predicate}) with no subject"
    first = subjects[0]
    digests = first.get("digest")
    sha = digests.get("sha256") if isinstance(digests, dict) else None
    name = _text(first.get("name", ""))
    subject = f"{name}@sha256:{_text(sha)}" if sha else f"{name} (no sha256)"
    more = f" (+{len(subjects) - 1} more)" if len(subjects) > 1 else ""
    return f"{predicate}, subject {subject}{more}"


def summarize(artifact_type: str | None, data: bytes) -> str | None:
    """One line about ``data``, an attached document of ``artifact_type``; None for a type not known here."""
    kinds = {SPDX_JSON: _spdx, CYCLONEDX_JSON: _cyclonedx, IN_TOTO_JSON: _statement}
    describe = kinds.get(artifact_type or "")
    if describe is None:
        return None
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "not JSON"
    if not isinstance(obj, dict):
        return "not a JSON object"
    return describe(obj)


def describe(attachment: Attachment) -> dict[str, Any]:
    """``attachment`` as ``inspect --json`` lists it: :meth:`Attachment.to_dict` and a ``summary``."""
    record = attachment.to_dict()
    doc = attachment.document
    summary = None
    if doc is not None and doc.size <= MAX_SUMMARY_BYTES:
        # read_attachments checked it against its digest (a layout's) or fetched it so (a registry's).
        summary = summarize(attachment.artifact.artifact_type, attachment.artifact.layers[0].path.read_bytes())
    record["summary"] = summary
    return record
