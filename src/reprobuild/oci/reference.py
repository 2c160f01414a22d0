"""Image references: ``[host[:port]/]path[:tag][@sha256:<64 hex>]``.

Grammar from the distribution project's reference package (``distribution/reference``): a name is
lowercase path components separated by ``/``; the first component is a registry host when it contains
a ``.`` or ``:`` or is ``localhost``; a tag is ``[\\w][\\w.-]{0,127}``. Names without a host resolve to
Docker Hub, and one-component Hub names gain the ``library/`` prefix, as every Docker client does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reprobuild.errors import ConfigError
from reprobuild.oci.digest import DIGEST_RE

#: Docker's default registry and the API host behind it (the conventional normalisation of short names).
DEFAULT_REGISTRY = "docker.io"
DEFAULT_REGISTRY_API = "registry-1.docker.io"
#: Every name Docker Hub goes by: in references, in ``docker login``'s config and as its API host.
DOCKER_HUB_ALIASES = frozenset({DEFAULT_REGISTRY, "index.docker.io", DEFAULT_REGISTRY_API})

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
#: A repository name: lowercase path components separated by ``/`` (``distribution/reference/regexp.go``).
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")
#: The longest name (``host/repository``) a registry takes (``NameTotalLengthMax`` in distribution/reference).
NAME_MAX = 255
#: A tag: up to 128 ASCII letters, digits, ``_``, ``.`` and ``-``, not starting with ``.`` or ``-``.
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)


def api_host(registry: str) -> str:
    """The host a registry's distribution API is served from (Docker Hub's differs from its name)."""
    return DEFAULT_REGISTRY_API if registry in DOCKER_HUB_ALIASES else registry


@dataclass(frozen=True)
class Reference:
    """A parsed image reference. ``tag`` and ``digest`` are optional; a pinned one has a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """The host the distribution API is served from."""
        return api_host(self.registry)

    @property
    def name(self) -> str:
        """``registry/repository``."""
        return f"{self.registry}/{self.repository}"

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    def with_digest(self, digest: str) -> Reference:
        """The same name and tag, pinned to ``digest``."""
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def ref(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag (default ``latest``)."""
        return self.digest or self.tag or "latest"


def _looks_like_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse_reference(text: str, *, origin: str = "image reference") -> Reference:
    """Parse ``text``; raise :class:`ConfigError` naming ``origin`` when it is malformed."""
    original = text
    digest: str | None = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise ConfigError(
                f"{origin}: {original!r} has a malformed digest {digest!r}",
                hint="a digest is `sha256:` followed by 64 lowercase hex digits (or `sha512:` and 128)",
            )
    tag: str | None = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not TAG_RE.match(tag):
            raise ConfigError(f"{origin}: {original!r} has an invalid tag {tag!r}")
    parts = text.split("/", 1)
    if len(parts) == 2 and _looks_like_host(parts[0]):
        registry, repository = parts[0], parts[1]
    else:
        registry, repository = DEFAULT_REGISTRY, text
    if registry in DOCKER_HUB_ALIASES:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    if len(f"{registry}/{repository}") > NAME_MAX:
        raise ConfigError(f"{origin}: {original[:80]!r}… is not a valid image name: longer than {NAME_MAX} characters")
    if not repository or not REPOSITORY_RE.match(repository):
        raise ConfigError(
            f"{origin}: {original!r} is not a valid image name",
            hint="names are lowercase, e.g. `python:3.11-slim@sha256:<64 hex>`",
        )
    return Reference(registry, repository, tag, digest)
