"""Dependency closure of a package set over one ``Packages`` index, as a runtime image needs it.

Rules (Debian Policy §7.1, §7.2, §7.5), deliberately simpler than apt's solver and deterministic:

* ``Pre-Depends`` and ``Depends`` are followed; ``Recommends``/``Suggests`` are not (a minimal
  runtime, like ``apt-get --no-install-recommends``), nor ``Conflicts``/``Breaks`` (one suite is
  self-consistent).
* A dependency group is skipped when a package already chosen satisfies one of its alternatives;
  otherwise the *first satisfiable* alternative (in the order written) is chosen: a real package
  at its highest version that meets the version constraint, else a provider of that virtual name
  (among those whose ``Provides`` meets the constraint, the one of highest ``Priority``, then
  the first by name, as apt would pick ``mawk`` for ``awk``; an unversioned
  ``Provides`` never meets a versioned dependency, §7.5).
* Architecture qualifiers ``:any`` and ``:native`` are accepted (one architecture is installed);
  packages of architecture ``all`` and of the target architecture qualify.
* ``Essential: yes`` packages are installed only when something depends on them: maintainer
  scripts are never run, so the tools they need (``dpkg``, ``perl-base`` …) are not implied.
* ``excluded`` names are treated as present without being installed: the escape hatch for
  packages needed only by maintainer scripts (recorded in the lock).
* Packages are visited in breadth-first order from the sorted request, so the result does not
  depend on how the request was written.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from reprobuild.base.debian.packages import Package, PackageIndex, Relation
from reprobuild.base.debian.version import satisfies
from reprobuild.errors import BaseImageError

#: Debian Policy §2.5 priorities, most important first: the tie-break among virtual providers.
_PRIORITY_RANK = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}


@dataclass(frozen=True)
class Resolution:
    """The chosen packages sorted by name, and the dependency names that were excluded."""

    packages: tuple[Package, ...]
    excluded: tuple[str, ...]


def _arch_ok(rel: Relation, arch: str) -> bool:
    return rel.arch in (None, "any", "native", arch)


def _provides(package: Package, rel: Relation) -> bool:
    """True when ``package`` (chosen or candidate) meets ``rel`` by its name or its Provides."""
    if package.name == rel.name:
        return rel.op is None or satisfies(package.version, rel.op, rel.version or "")
    for prov in package.provides:
        if prov.name != rel.name:
            continue
        if rel.op is None:
            return True
        if prov.op == "=" and prov.version and satisfies(prov.version, rel.op, rel.version or ""):
            return True
    return False


class _Resolver:
    def __init__(self, index: PackageIndex, arch: str, excluded: Sequence[str]) -> None:
        self.index = index
        self.arch = arch
        self.excluded = set(excluded)
        self.chosen: dict[str, Package] = {}
        self.providers_chosen: dict[str, list[Package]] = {}
        self.excluded_hits: set[str] = set()
        self.queue: deque[tuple[Package, str]] = deque()

    def candidates(self, name: str) -> list[Package]:
        return [p for p in self.index.versions(name) if p.architecture in (self.arch, "all")]

    def satisfied(self, rel: Relation) -> bool:
        if not _arch_ok(rel, self.arch):
            return False
        chosen = self.chosen.get(rel.name)
        if chosen is not None and _provides(chosen, rel):
            return True
        return any(_provides(p, rel) for p in self.providers_chosen.get(rel.name, []))

    def pick(self, rel: Relation) -> Package | None:
        if not _arch_ok(rel, self.arch):
            return None
        for package in self.candidates(rel.name):
            if _provides(package, rel):
                return package
        offers = [
            package
            for provider in self.index.providers(rel.name)
            for package in self.candidates(provider)
            if _provides(package, rel)
        ]
        if not offers:
            return None
        return min(offers, key=lambda p: (_PRIORITY_RANK.get(p.priority, len(_PRIORITY_RANK)), p.name))

    def add(self, package: Package, why: str) -> None:
        existing = self.chosen.get(package.name)
        if existing is not None:
            if existing.version != package.version:
                raise BaseImageError(
                    f"{why} needs {package.name} {package.version}, but {existing.version} is already chosen",
                    hint="the package set cannot be installed from one suite; remove one of them",
                )
            return
        self.chosen[package.name] = package
        for prov in package.provides:
            self.providers_chosen.setdefault(prov.name, []).append(package)
        self.queue.append((package, why))

    def run(self, requested: Sequence[str]) -> Resolution:
        for name in sorted(set(requested)):
            found = self.pick(Relation(name))
            if found is None:
                raise unknown_package(name, self.index, self.arch)
            self.add(found, f"the request `{name}`")
        while self.queue:
            package, why = self.queue.popleft()
            chain = f"{package.name} {package.version} (pulled in by {why})"
            for group in package.pre_depends + package.depends:
                if any(self.satisfied(rel) for rel in group):
                    continue
                skipped = [rel.name for rel in group if rel.name in self.excluded]
                if skipped:
                    self.excluded_hits.update(skipped)
                    continue
                for rel in group:
                    found = self.pick(rel)
                    if found is not None:
                        self.add(found, package.name)
                        break
                else:
                    alternatives = " | ".join(str(rel) for rel in group)
                    raise BaseImageError(
                        f"{chain} depends on `{alternatives}`, which no package in {self.index.origin} satisfies",
                        hint="the suite's index is incomplete for this set; check the suite, the "
                        "architecture and the mirror",
                    )
        packages = tuple(sorted(self.chosen.values(), key=lambda p: p.name))
        return Resolution(packages, tuple(sorted(self.excluded_hits)))


def unknown_package(name: str, index: PackageIndex, arch: str) -> BaseImageError:
    """The error for a requested name that is neither a package nor provided, with a did-you-mean."""
    close = difflib.get_close_matches(name, index.names, n=3, cutoff=0.6)
    hint = (
        "did you mean " + ", ".join(f"`{c}`" for c in close) + "?"
        if close
        else "check the package name (e.g. with `apt-cache search`) and the suite"
    )
    return BaseImageError(f"no package `{name}` for {arch} in {index.origin}", hint=hint)


def resolve(index: PackageIndex, arch: str, requested: Sequence[str], excluded: Sequence[str] = ()) -> Resolution:
    """Resolve ``requested`` and its ``Pre-Depends``/``Depends`` closure over ``index`` for ``arch``.

    Raises :class:`BaseImageError` for an unknown name (with a did-you-mean from the index's names)
    and for a dependency nothing satisfies (naming the chain that pulled it in).
    """
    return _Resolver(index, arch, excluded).run(requested)
