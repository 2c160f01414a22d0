"""The ``Packages`` index: downloaded, checked against ``Release``, parsed; and the relation grammar.

Spec: Debian wiki "DebianRepository/Format" (``<component>/binary-<arch>/Packages.xz``) and Debian
Policy §7.1 (``Depends: a (>= 1.0) | b, c:any``). Architecture ``all`` packages are listed in each
architecture's index (``No-Support-for-Architecture-all: Packages``).
"""

from __future__ import annotations

import gzip
import lzma
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from reprobuild.base.debian.deb822 import iter_stanzas
from reprobuild.base.debian.fetch import MIRROR, DebCache, pinned, sha256_hex
from reprobuild.base.debian.release import Release
from reprobuild.base.debian.version import compare_versions
from reprobuild.errors import BaseImageError, DigestMismatchError

_RELATION_RE = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9+.\-]*)(?::(?P<arch>[a-z0-9\-]+))?"
    r"\s*(?:\(\s*(?P<op><<|<=|>=|>>|=|<|>)\s*(?P<version>[0-9][^\s)]*)\s*\))?"
    r"\s*(?:\[[^\]]*\])?\s*(?:<[^>]*>\s*)*$"
)


@dataclass(frozen=True)
class Relation:
    """One alternative of a dependency: ``name[:arch] [(op version)]``."""

    name: str
    arch: str | None = None
    op: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        text = f"{self.name}:{self.arch}" if self.arch else self.name
        return f"{text} ({self.op} {self.version})" if self.op else text


def parse_relations(text: str, origin: str) -> tuple[tuple[Relation, ...], ...]:
    """Parse a relationship field into groups of alternatives (Policy §7.1)."""
    groups: list[tuple[Relation, ...]] = []
    for group in text.replace("\n", " ").split(","):
        if not group.strip():
            continue
        alternatives: list[Relation] = []
        for alt in group.split("|"):
            match = _RELATION_RE.match(alt.strip())
            if match is None:
                raise BaseImageError(f"{origin}: cannot parse the relation {alt.strip()!r}")
            alternatives.append(
                Relation(match["name"], match["arch"], match["op"], match["version"]),
            )
        groups.append(tuple(alternatives))
    return tuple(groups)


@dataclass(frozen=True)
class Package:
    """One binary package of the index (the fields the resolver and the lock need)."""

    name: str
    version: str
    architecture: str
    filename: str
    size: int
    sha256: str
    essential: bool
    multi_arch: str
    priority: str
    depends: tuple[tuple[Relation, ...], ...]
    pre_depends: tuple[tuple[Relation, ...], ...]
    provides: tuple[Relation, ...]
    suite: str = ""  # the suite whose index listed it (several suites can be merged)


def _package(stanza: dict[str, str], origin: str) -> Package:
    name = stanza.get("Package", "")
    where = f"{origin}, package `{name}`"
    try:
        provides = tuple(g[0] for g in parse_relations(stanza.get("Provides", ""), where))
        return Package(
            name=name,
            version=stanza["Version"],
            architecture=stanza["Architecture"],
            filename=stanza["Filename"],
            size=int(stanza["Size"]),
            sha256=stanza["SHA256"],
            essential=stanza.get("Essential", "no") == "yes",
            multi_arch=stanza.get("Multi-Arch", "no"),
            priority=stanza.get("Priority", "optional"),
            depends=parse_relations(stanza.get("Depends", ""), where),
            pre_depends=parse_relations(stanza.get("Pre-Depends", ""), where),
            provides=provides,
            suite=stanza.get(SUITE_FIELD, ""),
        )
    except (KeyError, ValueError) as e:
        raise BaseImageError(f"{where}: missing or bad field {e}") from e


class PackageIndex:
    """All packages of one index: by name (highest version first) and by provided virtual name.

    Stanzas are kept raw and turned into :class:`Package` on first use, because a resolve touches a
    few hundred of the ~60,000 entries.
    """

    def __init__(self, stanzas: Iterable[dict[str, str]], origin: str, *, suite: str = "") -> None:
        self.origin = origin
        self._raw: dict[str, list[dict[str, str]]] = {}
        self._providers: dict[str, list[str]] = {}
        self._parsed: dict[str, list[Package]] = {}
        for stanza in stanzas:
            name = stanza.get("Package")
            if not name:
                raise BaseImageError(f"{origin}: a stanza has no `Package` field")
            if suite:
                stanza[SUITE_FIELD] = suite
            self._raw.setdefault(name, []).append(stanza)
            provides = stanza.get("Provides")
            if provides:
                for group in parse_relations(provides, f"{origin}, package `{name}`"):
                    self._providers.setdefault(group[0].name, []).append(name)

    @classmethod
    def merged(cls, indexes: Sequence[PackageIndex]) -> PackageIndex:
        """One index over several (e.g. a suite and its -updates and -security suites).

        Like apt with equal pin priorities, the highest version of a name wins, whichever suite has it.
        """
        if len(indexes) == 1:
            return indexes[0]
        out = cls((), " + ".join(i.origin for i in indexes))
        for index in indexes:
            for name, stanzas in index._raw.items():
                out._raw.setdefault(name, []).extend(stanzas)
            for virtual, names in index._providers.items():
                out._providers.setdefault(virtual, []).extend(names)
        return out

    @property
    def names(self) -> list[str]:
        """Every real package name, sorted."""
        return sorted(self._raw)

    def versions(self, name: str) -> list[Package]:
        """The entries named ``name``, highest version first (empty when there are none)."""
        if name not in self._parsed:
            packages = [_package(s, self.origin) for s in self._raw.get(name, [])]
            packages.sort(key=lambda p: (p.version, p.suite))  # deterministic tie order before the real sort
            packages.sort(key=_VersionKey, reverse=True)
            self._parsed[name] = packages
        return self._parsed[name]

    def providers(self, virtual: str) -> list[str]:
        """Names of the packages whose ``Provides`` lists ``virtual``, sorted and unique."""
        return sorted(set(self._providers.get(virtual, [])))


class _VersionKey:
    # A sort key comparing Debian versions with dpkg's order.
    def __init__(self, package: Package) -> None:
        self.version = package.version

    def __lt__(self, other: _VersionKey) -> bool:
        return compare_versions(self.version, other.version) < 0


#: The last indexes parsed in this process, by the sha256 of their compressed bytes.
_LAST_PARSED: dict[str, PackageIndex] = {}
#: How many parsed indexes to keep (a suite with -updates and -security is 3; one is ~100 MB).
_KEEP_PARSED = 3
#: Internal stanza field naming the suite an entry came from (``X-`` fields are never Debian's own).
SUITE_FIELD = "X-Repro-Build-Suite"


@dataclass(frozen=True)
class VerifiedIndex:
    """A parsed index and the Release entry its compressed bytes were verified against."""

    path: str  # relative to dists/<suite>/, e.g. main/binary-amd64/Packages.xz
    sha256: str
    size: int
    index: PackageIndex


def fetch_packages(
    mirror: str, suite: str, component: str, arch: str, *, release: Release, cache: DebCache
) -> VerifiedIndex:
    """Download (or take from the cache) ``Packages.xz`` (else ``.gz``), verify it, and parse it."""
    decompressors = {".xz": lzma.decompress, ".gz": gzip.decompress}
    for suffix, decompress in decompressors.items():  # noqa: B007 (used after the loop)
        path = f"{component}/binary-{arch}/Packages{suffix}"
        if path in release.files:
            break
    else:
        raise BaseImageError(
            f"the Release file of `{suite}` lists no Packages index for {component}/binary-{arch}",
            hint="check the architecture and the component",
        )
    entry = release.index(path)
    parsed = _LAST_PARSED.get(entry.sha256)
    if parsed is not None:  # content-addressed, so reusing the parse within one process is exact
        return VerifiedIndex(path, entry.sha256, entry.size, parsed)
    digest = pinned(entry.sha256, f"the Packages index {path}")
    cached = cache.store.verified(digest, size=entry.size)
    if cached is None:
        url = f"{mirror.rstrip('/')}/dists/{suite}/{path}"
        hint = "the mirror is inconsistent or being updated; retry, or use a snapshot mirror"
        failure = replace(MIRROR, expected_by="the Release file lists", mismatch_hint=hint)
        cached = cache.store.fetch(
            url, expected=digest, size=entry.size, what=f"the Packages index {path}", failure=failure
        )
    data = cached.read_bytes()
    if sha256_hex(data) != entry.sha256:
        raise DigestMismatchError(
            f"the cached Packages index {cached} changed after it was verified",
            hint="another process is writing the cache; run the command again",
        )
    try:
        text = decompress(data).decode("utf-8")
    except (lzma.LZMAError, OSError, UnicodeDecodeError) as e:
        raise BaseImageError(f"decompressing the Packages index {path}: {e}") from e
    index = PackageIndex(iter_stanzas(text, f"{suite}/{path}"), f"{suite}/{path}", suite=suite)
    while len(_LAST_PARSED) >= _KEEP_PARSED:
        del _LAST_PARSED[next(iter(_LAST_PARSED))]
    _LAST_PARSED[entry.sha256] = index
    return VerifiedIndex(path, entry.sha256, entry.size, index)
