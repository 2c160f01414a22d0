"""Canonical tar layers: golden digests and independence from host path, umask, TZ, locale and order."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprobuild.errors import OCIError
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.layer import diff_id_of, write_layer
from reprobuild.oci.tarwriter import LayerEntry, entries_from_tree, tar_bytes
from tests.golden import Golden

EPOCH = 1700000000


def fixed_entries() -> list[LayerEntry]:
    """The golden layer's content: every entry kind, a long path and a non-ASCII name."""
    return [
        LayerEntry.file("/app/main.py", b"print('hello')\n"),
        LayerEntry.file("/app/run.sh", b"#!/bin/sh\necho hi\n", mode=0o700),
        LayerEntry.symlink("/app/current", "main.py"),
        LayerEntry.hardlink("/app/alias.py", "/app/main.py"),
        LayerEntry.directory("/var/empty"),
        LayerEntry.file("/app/" + "d" * 60 + "/" + "f" * 60 + ".txt", b"long\n"),
        LayerEntry.file("/app/caf\u00e9.txt", b"accent\n"),
    ]


#: The tar's and layers' digests, keyed by the compressor versions (tests/golden.py). A change means the
#: canonical form or a pinned compressor changed: that is a format break.
GOLDEN = Path(__file__).with_name("golden-tarwriter.json")


def test_golden_tar_and_layers(tmp_path: Path, golden: Golden) -> None:
    tar = hashlib.sha256(tar_bytes(fixed_entries(), EPOCH)).hexdigest()
    store = BlobStore(tmp_path)
    gz = write_layer(fixed_entries(), epoch=EPOCH, compressor=Compressor.gzip(), store=store)
    zst = write_layer(fixed_entries(), epoch=EPOCH, compressor=Compressor.zstd(), store=store)
    none = write_layer(fixed_entries(), epoch=EPOCH, compressor=Compressor.none(), store=store)
    assert gz.diff_id.hex == zst.diff_id.hex == none.diff_id.hex == none.digest.hex == tar
    golden.digests(GOLDEN, {"tar": tar, "gzip_layer": gz.digest.hex, "zstd_layer": zst.digest.hex})
    for layer in (gz, zst, none):
        assert diff_id_of(layer) == layer.diff_id
        assert layer.path.read_bytes() and hashlib.sha256(layer.path.read_bytes()).hexdigest() == layer.digest.hex


def _open_tar(data: bytes) -> tarfile.TarFile:
    """A tar read from memory (nothing to close: the buffer is in memory)."""
    return tarfile.TarFile(fileobj=io.BytesIO(data))


def test_canonical_header_fields() -> None:
    tf = _open_tar(tar_bytes(fixed_entries(), EPOCH))
    members = tf.getmembers()
    names = [m.name for m in members]
    # Parents before children, implied directories present, sorted component-wise.
    assert names[:2] == ["app", "app/alias.py"]
    assert "var" in names and names.index("var") < names.index("var/empty")
    by = {m.name: m for m in members}
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", EPOCH)
        # Only path/linkpath PAX records, never atime/ctime/mtime/xattrs.
        assert set(m.pax_headers) <= {"path", "linkpath"}
    assert by["app"].mode == 0o755 and by["app"].isdir()
    assert by["app/run.sh"].mode == 0o755
    assert by["app/main.py"].mode == 0o644
    assert by["app/current"].issym() and by["app/current"].mode == 0o777
    # First-seen sorted order: alias.py < main.py, so alias.py holds the bytes.
    assert by["app/alias.py"].isreg() and by["app/main.py"].islnk() and by["app/main.py"].linkname == "app/alias.py"
    long = next(m for m in members if m.name.endswith(".txt") and "ddd" in m.name)
    assert long.pax_headers == {"path": long.name}
    assert by["app/caf\u00e9.txt"].pax_headers == {"path": "app/caf\u00e9.txt"}


@settings(max_examples=30, deadline=None)
@given(st.permutations(fixed_entries()))
def test_entry_order_does_not_matter(entries: list[LayerEntry]) -> None:
    assert tar_bytes(entries, EPOCH) == tar_bytes(fixed_entries(), EPOCH)


def _make_tree(root: Path) -> None:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "a.py").write_bytes(b"a = 1\n")
    (root / "pkg" / "sub" / "b.bin").write_bytes(bytes(range(256)) * 100)
    (root / "pkg" / "tool").write_bytes(b"#!/bin/sh\n")
    (root / "pkg" / "tool").chmod(0o750)
    (root / "pkg" / "link").symlink_to("a.py")
    os.link(root / "pkg" / "a.py", root / "pkg" / "z-hard.py")


_TREE_SCRIPT = """
import hashlib, os, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.oci.test_tarwriter import _make_tree
from reprobuild.oci.tarwriter import entries_from_tree, tar_bytes
root = Path(sys.argv[1])
_make_tree(root)
os.utime(root / "pkg" / "a.py", (1, 2))
print(hashlib.sha256(tar_bytes(entries_from_tree(root, "/opt/app"), {epoch})).hexdigest())
"""


def test_tree_bytes_independent_of_host_path_umask_tz_locale(tmp_path: Path) -> None:
    """Build the same tree in two places under different umask, TZ and locale, in fresh processes."""
    repo = str(Path(__file__).resolve().parents[2])
    script = _TREE_SCRIPT.format(repo=repo, epoch=EPOCH)
    digests = []
    for i, (umask, tz, lang) in enumerate([("0022", "UTC", "C"), ("0077", "Asia/Kolkata", "C.UTF-8")]):
        root = tmp_path / f"somewhere-{i}" / ("deeper" * i)
        root.mkdir(parents=True)
        env = {**os.environ, "TZ": tz, "LANG": lang, "LC_ALL": lang}
        out = subprocess.run(
            ["sh", "-c", f'umask {umask} && exec {sys.executable} -c "$0" {root}', script],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        digests.append(out.stdout.strip())
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_tree_entries_keep_hardlinks_and_symlinks(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    tf = _open_tar(tar_bytes(entries_from_tree(tmp_path, "/opt"), EPOCH))
    by = {m.name: m for m in tf.getmembers()}
    assert by["opt"].isdir() and by["opt/pkg"].isdir()
    assert by["opt/pkg/a.py"].isreg() and by["opt/pkg/z-hard.py"].islnk()
    assert by["opt/pkg/z-hard.py"].linkname == "opt/pkg/a.py"
    assert by["opt/pkg/link"].linkname == "a.py"
    assert by["opt/pkg/tool"].mode == 0o755


def test_tree_rejects_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OCIError, match="device node, FIFO or socket"):
        entries_from_tree(tmp_path)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([LayerEntry.file("a", b"1"), LayerEntry.file("/a", b"2")], "given twice"),
        ([LayerEntry.file("a", b"1"), LayerEntry.file("a/b", b"2")], "not a directory"),
        ([LayerEntry.hardlink("a", "missing")], "not a file in the same layer"),
    ],
)
def test_bad_entry_sets_are_rejected(entries: list[LayerEntry], message: str) -> None:
    with pytest.raises(OCIError, match=message):
        tar_bytes(entries, EPOCH)


@pytest.mark.parametrize("path", ["../etc/passwd", "a/../../b", "/", ".", "a\0b"])
def test_bad_paths_are_rejected(path: str) -> None:
    with pytest.raises(OCIError):
        LayerEntry.file(path, b"x")


def test_preserve_metadata_clamps_mtime(tmp_path: Path) -> None:
    e = LayerEntry("usr/bin/su", "file", 0o4755, b"x", uid=0, gid=0, mtime=EPOCH + 100)
    f = LayerEntry("var/mail", "dir", 0o2775, uid=0, gid=8, mtime=EPOCH - 100)
    tf = _open_tar(tar_bytes([e, f], EPOCH, preserve_metadata=True))
    by = {m.name: m for m in tf.getmembers()}
    assert by["usr/bin/su"].mode == 0o4755 and by["usr/bin/su"].mtime == EPOCH
    assert by["var/mail"].gid == 8 and by["var/mail"].mtime == EPOCH - 100


_component = st.text(alphabet="abcXYZ019._-\u00e9", min_size=1, max_size=6).filter(lambda c: c not in (".", ".."))


@settings(max_examples=40, deadline=None)
@given(
    paths=st.lists(st.lists(_component, min_size=1, max_size=4).map("/".join), min_size=1, max_size=15, unique=True),
    seed=st.randoms(use_true_random=False),
)
def test_random_trees_sorted_and_order_independent(paths: list[str], seed: object) -> None:
    # Keep only file paths that are not a parent of another path (a file cannot have children).
    files = [p for p in paths if not any(q.startswith(p + "/") for q in paths)]
    entries = [LayerEntry.file(p, p.encode()) for p in files]
    shuffled = list(entries)
    seed.shuffle(shuffled)  # type: ignore[attr-defined]
    data = tar_bytes(entries, EPOCH)
    assert tar_bytes(shuffled, EPOCH) == data
    names = [m.name for m in _open_tar(data).getmembers()]
    # Every parent precedes its children and every implied directory is present exactly once.
    assert len(names) == len(set(names))
    for i, name in enumerate(names):
        parent = name.rsplit("/", 1)[0] if "/" in name else None
        assert parent is None or parent in names[:i]
