"""Dependency closure over a synthetic index: alternatives, virtuals, versions, Essential, errors."""

from __future__ import annotations

import pytest

from reprobuild.base.debian.packages import Relation, parse_relations
from reprobuild.base.debian.resolve import resolve
from reprobuild.errors import BaseImageError
from tests.base.debs import index_from

INDEX = """\
Package: app
Depends: libfoo (>= 2.0), awk, missing-alt | libbar, libc6:any, python3:any (>= 3.11)
Pre-Depends: pre

Package: libfoo
Version: 1.5

Package: libfoo
Version: 2.1
Depends: libc6

Package: libbar
Depends: libc6

Package: pre

Package: libc6
Essential: no

Package: gawk
Provides: awk
Priority: optional

Package: mawk
Provides: awk
Priority: required

Package: python3
Version: 3.11.2-1
Architecture: amd64

Package: python3
Version: 3.11.2-1
Architecture: arm64

Package: dpkg
Essential: yes

Package: virtual-user
Depends: vmail (>= 2)

Package: mta-old
Provides: vmail

Package: mta-new
Provides: vmail (= 3)

Package: needs-nothing
Depends: pythn3

Package: uses-excluded
Depends: debconf (>= 0.5) | debconf-2.0

Package: debconf
Provides: debconf-2.0
Depends: dpkg
"""


def names(requested: list[str], excluded: tuple[str, ...] = ()) -> list[str]:
    return [p.name for p in resolve(index_from(INDEX), "amd64", requested, excluded).packages]


def test_closure() -> None:
    index = index_from(INDEX)
    result = resolve(index, "amd64", ["app"])
    by_name = {p.name: p for p in result.packages}
    # highest version that meets >= 2.0; `awk` by the required provider; first satisfiable alternative;
    # `:any` qualifiers accepted; Pre-Depends followed; Essential dpkg not pulled in by nobody.
    assert sorted(by_name) == ["app", "libbar", "libc6", "libfoo", "mawk", "pre", "python3"]
    assert by_name["libfoo"].version == "2.1"
    assert by_name["python3"].architecture == "amd64"
    assert result.excluded == ()


def test_request_order_does_not_matter() -> None:
    assert names(["app", "virtual-user"]) == names(["virtual-user", "app"])


def test_versioned_virtual_needs_versioned_provides() -> None:
    assert "mta-new" in names(["virtual-user"])
    assert "mta-old" not in names(["virtual-user"])


def test_essential_only_when_depended_on() -> None:
    assert "dpkg" not in names(["app"])
    assert "dpkg" in names(["uses-excluded"])  # through debconf


def test_excluded_dependency_is_recorded() -> None:
    result = resolve(index_from(INDEX), "amd64", ["uses-excluded"], ("debconf", "debconf-2.0"))
    assert [p.name for p in result.packages] == ["uses-excluded"]
    assert result.excluded == ("debconf", "debconf-2.0")


def test_unknown_package_did_you_mean() -> None:
    with pytest.raises(BaseImageError, match="no package `libfo` for amd64") as e:
        resolve(index_from(INDEX), "amd64", ["libfo"])
    assert e.value.hint is not None and "did you mean `libfoo`" in e.value.hint


def test_unsatisfiable_dependency_names_the_chain() -> None:
    with pytest.raises(
        BaseImageError, match=r"needs-nothing 1.0 \(pulled in by the request `needs-nothing`\) depends on `pythn3`"
    ):
        resolve(index_from(INDEX), "amd64", ["needs-nothing"])


def test_version_constraint_unsatisfiable() -> None:
    index = index_from("Package: a\nDepends: b (>= 9)\n\nPackage: b\nVersion: 1\n")
    with pytest.raises(BaseImageError, match=r"depends on `b \(>= 9\)`"):
        resolve(index, "amd64", ["a"])


def test_other_architecture_is_not_a_candidate() -> None:
    index = index_from("Package: a\nArchitecture: arm64\n")
    with pytest.raises(BaseImageError, match="no package `a` for amd64"):
        resolve(index, "amd64", ["a"])


def test_relation_grammar() -> None:
    groups = parse_relations("a (>= 1:2.0-1), b:any | c (<< 3), d [amd64] <!nocheck>", "t")
    assert groups == (
        (Relation("a", None, ">=", "1:2.0-1"),),
        (Relation("b", "any"), Relation("c", None, "<<", "3")),
        (Relation("d"),),
    )
    with pytest.raises(BaseImageError, match="cannot parse the relation"):
        parse_relations("a (>= )", "t")


def test_merged_suites_highest_version_wins() -> None:
    from reprobuild.base.debian.deb822 import iter_stanzas
    from reprobuild.base.debian.packages import PackageIndex

    def index(text: str, suite: str) -> PackageIndex:
        stanzas = []
        for st in iter_stanzas(text, suite):
            st.update(Architecture="amd64", Filename=f"pool/{st['Package']}.deb", Size="1", SHA256="0" * 64)
            stanzas.append(st)
        return PackageIndex(stanzas, suite, suite=suite)

    main = index("Package: app\nVersion: 1.0\nDepends: lib\n\nPackage: lib\nVersion: 1.0-1\n", "bookworm")
    security = index("Package: lib\nVersion: 1.0-1+deb12u1\n", "bookworm-security")
    result = resolve(PackageIndex.merged([main, security]), "amd64", ["app"])
    assert [(p.name, p.version, p.suite) for p in result.packages] == [
        ("app", "1.0", "bookworm"),
        ("lib", "1.0-1+deb12u1", "bookworm-security"),
    ]
