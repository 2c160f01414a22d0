"""Reading .deb files in Python, and unpacking them into a runtime rootfs without maintainer scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reprobuild.base.debian.deb import read_deb
from reprobuild.base.debian.deb822 import iter_stanzas
from reprobuild.base.debian.rootfs import NONROOT_ID, assemble_rootfs
from reprobuild.errors import BaseImageError
from reprobuild.oci.tarwriter import LayerEntry
from tests.base.debs import FakeDeb, Item, ar, make_deb
from tests.testbed import require_tool

EPOCH = 1_700_000_000

SIMPLE = FakeDeb(
    "simple",
    items=(
        Item("./", "dir", mode=0o755),
        Item("./usr/", "dir", mode=0o755),
        Item("./usr/bin/", "dir", mode=0o755),
        Item("./usr/bin/tool", data=b"#!/bin/true\n", mode=0o755),
        Item("./usr/share/doc/simple/README", data=b"hello\n"),
    ),
)


@pytest.mark.parametrize("compression", [".xz", ".zst", ".gz", ""])
def test_read_deb_each_compression(compression: str) -> None:
    deb = read_deb(make_deb(SIMPLE, compression), "simple.deb")
    assert deb.field("Package") == "simple"
    assert "postinst" in deb.control_files  # read as data, never run
    files = {m.info.name: m.data for m in deb.members if m.info.isreg()}
    assert files["./usr/bin/tool"] == b"#!/bin/true\n"


@pytest.mark.parametrize("compressor", ["xz", "zstd", "gzip"])
def test_reads_what_dpkg_deb_builds(tmp_path: Path, compressor: str) -> None:
    require_tool("dpkg-deb", "`apt-get install -y dpkg` (Debian has it; `.ci/run` runs on Debian)")
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: real\nVersion: 2.0-1\nArchitecture: all\nMaintainer: T <t@invalid>\nDescription: d\n"
    )
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "usr" / "lib" / "data.txt").write_bytes(b"payload\n")
    (root / "usr" / "lib" / "link").symlink_to("data.txt")
    out = tmp_path / "real.deb"
    subprocess.run(
        ["dpkg-deb", f"-Z{compressor}", "--root-owner-group", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    deb = read_deb(out.read_bytes(), "real.deb")
    assert deb.field("Version") == "2.0-1"
    members = {m.info.name: m for m in deb.members}
    assert members["./usr/lib/data.txt"].data == b"payload\n"
    assert members["./usr/lib/link"].info.linkname == "data.txt"


def test_dpkg_deb_accepts_the_test_helper(tmp_path: Path) -> None:
    require_tool("dpkg-deb", "`apt-get install -y dpkg` (Debian has it; `.ci/run` runs on Debian)")
    path = tmp_path / "simple.deb"
    path.write_bytes(make_deb(SIMPLE))
    out = subprocess.run(["dpkg-deb", "--contents", str(path)], check=True, capture_output=True, text=True)
    assert "./usr/bin/tool" in out.stdout


def test_corrupt_deb() -> None:
    with pytest.raises(BaseImageError, match="not an ar archive"):
        read_deb(b"garbage", "x.deb")
    with pytest.raises(BaseImageError, match="truncated"):
        read_deb(make_deb(SIMPLE)[:-50], "x.deb")
    with pytest.raises(BaseImageError, match="debian-binary"):
        read_deb(ar([("debian-binary", b"3.0\n")]), "x.deb")


def rootfs_of(*debs: FakeDeb) -> dict[str, LayerEntry]:
    parsed = [(d.package, read_deb(make_deb(d), d.package)) for d in debs]
    return {e.path: e for e in assemble_rootfs(parsed, EPOCH).entries}


def test_merged_usr_and_symlink_retargeting() -> None:
    deb = FakeDeb(
        "libx",
        items=(
            Item("./lib/", "dir", mode=0o755),
            Item("./lib/x86_64-linux-gnu/libx.so.1.0", data=b"\x7fELF"),
            Item("./lib/x86_64-linux-gnu/libx.so.1", "symlink", target="libx.so.1.0"),
            Item("./lib64/ld.so", "symlink", target="/lib/x86_64-linux-gnu/libx.so.1"),
            Item("./bin/up", "symlink", target="../usr/share/up"),
            Item("./bin/hard", "hardlink", target="./lib/x86_64-linux-gnu/libx.so.1.0"),
        ),
    )
    tree = rootfs_of(deb)
    assert tree["lib"].kind == "symlink" and tree["lib"].target == "usr/lib"
    assert tree["bin"].target == "usr/bin" and tree["sbin"].target == "usr/sbin"
    assert tree["lib64"].target == "usr/lib64"
    assert tree["usr/lib/x86_64-linux-gnu/libx.so.1.0"].content == b"\x7fELF"
    assert tree["usr/lib/x86_64-linux-gnu/libx.so.1"].target == "libx.so.1.0"
    assert tree["usr/lib64/ld.so"].target == "/lib/x86_64-linux-gnu/libx.so.1"  # absolute: kept as a link
    # /bin/up -> ../usr/share/up would break after the move; it still points at /usr/share/up.
    assert tree["usr/bin/up"].target == "../share/up"
    assert tree["usr/bin/hard"].kind == "hardlink"
    assert tree["usr/bin/hard"].target == "usr/lib/x86_64-linux-gnu/libx.so.1.0"


def test_dotdot_is_refused() -> None:
    evil = FakeDeb("evil", items=(Item("./usr/../../etc/passwd", data=b"x"),))
    with pytest.raises(BaseImageError, match=r"package `evil`: the entry .* contains `\.\.`"):
        rootfs_of(evil)


def test_devices_skipped_setid_dropped_owner_normalised() -> None:
    deb = FakeDeb(
        "odd",
        items=(
            Item("./dev/null", "chr", mode=0o666),
            Item("./run/fifo", "fifo", mode=0o644),
            Item("./usr/bin/su", data=b"su", mode=0o4755),
            Item("./usr/bin/wall", data=b"w", mode=0o2755, gid=5),
            Item("./var/tmp/", "dir", mode=0o1777),
            Item("./var/local/", "dir", mode=0o2775, gid=50),
        ),
    )
    parsed = [("odd", read_deb(make_deb(deb), "odd"))]
    rootfs = assemble_rootfs(parsed, EPOCH)
    tree = {e.path: e for e in rootfs.entries}
    assert "dev/null" not in tree and "run/fifo" not in tree
    assert rootfs.skipped_devices == ("/dev/null (from odd)", "/run/fifo (from odd)")
    assert tree["usr/bin/su"].mode == 0o755 and tree["usr/bin/wall"].mode == 0o755
    assert tree["usr/bin/wall"].gid == 0
    assert [s.split()[0] for s in rootfs.dropped_setid] == ["/usr/bin/su", "/usr/bin/wall", "/var/local"]
    assert tree["var/tmp"].mode == 0o1777  # sticky bits are kept
    assert (tree["var/local"].mode, tree["var/local"].gid) == (0o775, 0)


def test_clash_is_an_error_but_identical_files_are_fine() -> None:
    a = FakeDeb("a", items=(Item("./etc/shared", data=b"same"),))
    b = FakeDeb("b", items=(Item("./etc/shared", data=b"same"),))
    c = FakeDeb("c", items=(Item("./etc/shared", data=b"different"),))
    assert rootfs_of(a, b)["etc/shared"].content == b"same"
    with pytest.raises(BaseImageError, match="`/etc/shared` is shipped by both `a` and `c`"):
        rootfs_of(a, c)


def test_generated_files() -> None:
    certs = FakeDeb(
        "ca-certificates",
        version="20230311",
        arch="all",
        items=(
            Item("./usr/share/ca-certificates/mozilla/B_Root.crt", data=b"-----B-----"),
            Item("./usr/share/ca-certificates/mozilla/A_Root.crt", data=b"-----A-----\n"),
            Item("./usr/share/ca-certificates/mozilla/README", data=b"not a cert"),
        ),
        extra_control="Depends: openssl\n",
    )
    parsed = [(d.package, read_deb(make_deb(d), d.package)) for d in (SIMPLE, certs)]
    rootfs = assemble_rootfs(parsed, EPOCH)
    tree = {e.path: e for e in rootfs.entries}
    assert tree["etc/ssl/certs/ca-certificates.crt"].content == b"-----A-----\n-----B-----\n"
    passwd = tree["etc/passwd"].content
    assert isinstance(passwd, bytes) and b"nonroot:x:65532:65532:" in passwd and passwd.startswith(b"root:x:0:0:")
    assert tree["etc/group"].content == b"root:x:0:\nnonroot:x:65532:\n"
    assert b"hosts:          files dns" in tree["etc/nsswitch.conf"].content  # type: ignore[operator]
    home = tree["home/nonroot"]
    assert (home.uid, home.gid, home.mode) == (NONROOT_ID, NONROOT_ID, 0o700)
    assert tree["tmp"].mode == 0o1777 and tree["root"].mode == 0o700
    assert all(tree[p.lstrip("/")].mtime == EPOCH for p in rootfs.generated)
    status = tree["var/lib/dpkg/status"].content
    assert isinstance(status, bytes)
    stanzas = list(iter_stanzas(status.decode(), "status"))
    assert [s["Package"] for s in stanzas] == ["ca-certificates", "simple"]
    assert all(s["Status"] == "install ok installed" for s in stanzas)
    assert stanzas[0]["Depends"] == "openssl"
    listing = tree["var/lib/dpkg/info/simple.list"].content
    assert isinstance(listing, bytes) and b"/usr/bin/tool\n" in listing
    assert "var/lib/dpkg/info/simple.md5sums" in tree


def test_existing_nsswitch_is_kept() -> None:
    deb = FakeDeb("libc-ish", items=(Item("./etc/nsswitch.conf", data=b"hosts: files\n"),))
    assert rootfs_of(deb)["etc/nsswitch.conf"].content == b"hosts: files\n"
