"""The base lock: contents, credentials, round trip, --check (library and CLI), did-you-mean."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from reprobuild.base.debian.lock import (
    LockedDeb,
    check_inputs,
    check_lock,
    lock_differences,
    make_lock,
    read_lock,
    write_lock,
)
from reprobuild.base.debian.sources import default_mirror
from reprobuild.cli.main import main
from reprobuild.errors import BaseImageError, LockError, StaleLockError
from tests.base.conftest import LockedBase

pytestmark = pytest.mark.network


def test_lock_contents(locked_base: LockedBase) -> None:
    doc = json.loads(locked_base.path.read_text())
    text = locked_base.path.read_text()
    assert text.endswith("}\n") and "regenerate" in doc["comment"]
    names = [p["name"] for p in doc["packages"]]
    assert names == sorted(names)
    assert {"python3", "python3.11-minimal", "libpython3.11-stdlib", "libssl3", "libsqlite3-0", "libffi8"} <= set(names)
    assert {"ca-certificates", "tzdata", "netbase", "base-files"} <= set(names)
    assert "perl-base" not in names and "apt" not in names
    for p in doc["packages"]:
        assert len(p["sha256"]) == 64 and p["size"] > 0 and p["filename"].startswith("pool/")
    assert len(doc["release"]["sha256"]) == 64
    assert doc["release"]["signature"].startswith("verified by gpgv")
    assert doc["index"]["path"].startswith("main/binary-amd64/Packages")
    assert doc["inputs"]["packages"] == sorted(doc["inputs"]["packages"])
    assert doc["inputs_checksum"].startswith("sha256:")
    # No mirror configured: the lock names none (the same lock on every machine, and no mirror host in a
    # committed file); downloads then use the machine's apt source for the suite.
    assert doc["inputs"]["mirror"] is None
    assert doc["mirror"] == {"snapshot": None, "url": None}
    assert locked_base.lock.mirror == default_mirror("bookworm")
    assert read_lock(locked_base.path) == locked_base.lock


def test_credentials_never_reach_the_lock(locked_base: LockedBase) -> None:
    secret = replace(locked_base.inputs, mirror="https://robot:s3cret@mirror.invalid/debian/")
    assert secret.to_json()["mirror"] == "https://mirror.invalid/debian"
    assert "s3cret" not in json.dumps(secret.to_json())


def test_check_current_and_stale(locked_base: LockedBase, tmp_path: Path) -> None:
    assert check_lock(locked_base.path, locked_base.inputs, locked_base.cache) == locked_base.lock
    more = replace(locked_base.inputs, packages=(*locked_base.inputs.packages, "libexpat1"))
    with pytest.raises(StaleLockError, match=r"input `packages`") as e:
        check_lock(locked_base.path, more, locked_base.cache)
    assert e.value.exit_code == 1
    with pytest.raises(StaleLockError, match=r"input `packages`: \+libexpat1$"):
        check_inputs(locked_base.path, more)  # the offline part, what a build checks
    assert check_inputs(locked_base.path, locked_base.inputs) == locked_base.lock
    # A lock made with an explicit mirror satisfies "the machine's mirror", not another explicit one.
    explicit = tmp_path / "explicit.json"
    write_lock(
        explicit,
        replace(locked_base.lock, inputs={**locked_base.lock.inputs, "mirror": "http://mirror.invalid/debian"}),
    )
    assert check_inputs(explicit, locked_base.inputs).inputs["mirror"] == "http://mirror.invalid/debian"
    other = replace(locked_base.inputs, mirror="http://other.invalid/debian")
    with pytest.raises(StaleLockError, match=r"input `mirror`: 'http://mirror.invalid/debian' -> 'http://other"):
        check_inputs(explicit, other)
    # A lock whose pins no longer match what the mirror resolves to names the package.
    old = read_lock(locked_base.path)
    edited = tuple(replace(p, version="0.0-old") if p.name == "libffi8" else p for p in old.packages)
    stale = tmp_path / "stale.json"
    write_lock(stale, replace(old, packages=edited))
    with pytest.raises(StaleLockError, match=r"package `libffi8`: 0\.0-old \(bookworm\) -> "):
        check_lock(stale, locked_base.inputs, locked_base.cache)


def test_differences(locked_base: LockedBase) -> None:
    old = locked_base.lock
    assert lock_differences(old, old) == []
    extra = LockedDeb("zz-new", "1.0", "all", "0" * 64, 1, "pool/main/z/zz-new_1.0_all.deb", "bookworm")
    packages = (*(p for p in old.packages if p.name != "netbase"), extra)
    release = {**old.release, "sha256": "f" * 64}
    new = replace(old, packages=packages, release=release)
    lines = lock_differences(old, new)
    assert lines[0].startswith(f"Release file of `bookworm`: sha256 {old.release['sha256']}")
    assert "package `zz-new`: added (1.0)" in lines
    assert any(line.startswith("package `netbase`: removed") for line in lines)


def test_cli_check_exit_codes(locked_base: LockedBase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--project", str(tmp_path), "--cache", str(locked_base.cache.root), "--arch", "amd64"]
    common += ["--suite", "bookworm", "--lock", str(locked_base.path)]
    assert main(["base", "lock", "--check", *common]) == 0
    assert "is current" in capsys.readouterr().out
    assert main(["base", "lock", "--check", "--package", "libexpat1", *common]) == 1
    err = capsys.readouterr().err
    assert "is stale" in err and "input `packages`" in err and "hint: regenerate it" in err
    assert main(["base", "lock", "--check", *common[:-1], str(tmp_path / "absent.json")]) == 2


def test_cli_writes_the_same_lock(locked_base: LockedBase, tmp_path: Path) -> None:
    out = tmp_path / "repro-locks" / "base-bookworm-amd64.json"
    args = ["base", "lock", "--project", str(tmp_path), "--cache", str(locked_base.cache.root)]
    assert main([*args, "--suite", "bookworm", "--arch", "amd64"]) == 0
    assert out.read_text() == locked_base.path.read_text()


def test_unknown_package_did_you_mean(locked_base: LockedBase) -> None:
    typo = replace(locked_base.inputs, packages=(*locked_base.inputs.packages, "pyhton3-numpy"))
    with pytest.raises(BaseImageError, match="no package `pyhton3-numpy` for amd64") as e:
        make_lock(typo, locked_base.cache)
    assert e.value.hint is not None and "did you mean `python3-numpy`" in e.value.hint


def test_malformed_lock(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"lock_version": 1}')
    with pytest.raises(LockError, match="malformed"):
        read_lock(bad)
    with pytest.raises(LockError, match="does not exist"):
        read_lock(tmp_path / "absent.json")


def test_reads_version_1_locks(locked_base: LockedBase, tmp_path: Path) -> None:
    doc = locked_base.lock.to_json()
    mirror = doc.pop("mirror")
    doc.update(lock_version=1, snapshot=mirror["snapshot"], inputs={**doc["inputs"], "mirror": mirror["url"]})
    old = tmp_path / "v1.json"
    old.write_text(json.dumps(doc))
    lock = read_lock(old)
    assert lock.mirror == default_mirror("bookworm") and lock.packages == locked_base.lock.packages
    assert check_inputs(old, locked_base.inputs) == lock  # mirror None accepts the recorded one
    doc["lock_version"] = 99
    old.write_text(json.dumps(doc))
    with pytest.raises(StaleLockError, match="has lock_version 99"):
        read_lock(old)
