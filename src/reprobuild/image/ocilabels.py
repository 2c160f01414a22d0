"""The standard OCI annotations of an image, set as config labels and as manifest annotations.

Keys from the image-spec (``annotations.md``, "Pre-Defined Annotation Keys"); every value comes from the
project (``[project]``, ``[project.urls]``), the commit, the base pin or the epoch, never from the host:

``created``         the build epoch (RFC 3339, UTC), as the config's ``created``
``title``           ``project.name``
``version``         ``project.version`` (absent when dynamic)
``description``     ``project.description``
``licenses``        ``project.license`` when it is an SPDX license expression (PEP 639 form, or the
                    ``text`` of a legacy table if that parses as one), canonicalised by ``packaging``
``url``             ``[project.urls]`` Homepage
``documentation``   ``[project.urls]`` Documentation (or Docs)
``source``          see :mod:`reprobuild.image.sourcelabel`
``revision``        the commit
``base.name``       the base as configured; ``base.digest`` its manifest digest

A value that is empty or unknown leaves the key out rather than inventing one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

from reprobuild.config import Config, Target
from reprobuild.image import imageconfig

PREFIX = "org.opencontainers.image."
CREATED = PREFIX + "created"
DESCRIPTION = PREFIX + "description"
LICENSES = PREFIX + "licenses"
URL = PREFIX + "url"
DOCUMENTATION = PREFIX + "documentation"

#: ``[project.urls]`` labels, compared as PEP 753 normalises them.
_URL_LABELS = {URL: ("homepage",), DOCUMENTATION: ("documentation", "docs")}


def _normalise(label: str) -> str:
    return re.sub(r"[\s\W_]+", "", label.lower())


def spdx_expression(text: str | None) -> str | None:
    """``text`` canonicalised as an SPDX license expression, or None if it is not one."""
    if not text:
        return None
    try:
        return str(canonicalize_license_expression(text))
    except InvalidLicenseExpression:
        return None


def project_url(urls: Mapping[str, str], labels: tuple[str, ...]) -> str | None:
    by_label = {_normalise(k): v for k, v in sorted(urls.items())}
    return next((by_label[label] for label in labels if by_label.get(label)), None)


def standard_labels(
    config: Config,
    target: Target,
    *,
    created: str,
    revision: str | None,
    source: str | None,
    base_digest: str | None,
) -> dict[str, str]:
    """The labels (and manifest annotations) of ``target``'s image, sorted by key, empty values left out."""
    project = config.project
    labels = {
        CREATED: created,
        imageconfig.TITLE: project.name,
        imageconfig.VERSION: project.version,
        DESCRIPTION: project.description,
        LICENSES: spdx_expression(project.license),
        URL: project_url(project.urls, _URL_LABELS[URL]),
        DOCUMENTATION: project_url(project.urls, _URL_LABELS[DOCUMENTATION]),
        imageconfig.SOURCE: source,
        imageconfig.REVISION: revision,
        imageconfig.BASE_NAME: target.base.text,
        imageconfig.BASE_DIGEST: base_digest,
    }
    return {k: v for k, v in sorted(labels.items()) if v}
