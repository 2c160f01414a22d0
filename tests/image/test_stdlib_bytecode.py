"""The Debian base's standard-library byte-code: what Debian's maintainer scripts compile, as they do, every byte
from the pinned compiler, and used by the image's interpreter without compiling or writing anything."""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from reprobuild.image import interpreter as interp_mod
from reprobuild.image.interpreter import Interpreter, find_interpreter
from reprobuild.image.stdlibbytecode import covered, stdlib_entries, stdlib_key, write_stdlib_layer
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import default_config, new_image
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Platform
from tests.foundation.helpers import git_commit
from tests.image.bookworm import bookworm_project
from tests.testbed import Engine

EPOCH = 1_700_000_000
OLD = 1_600_000_000  # the packaged mtime of most sources
LATE = EPOCH + 1000  # a source newer than the base's epoch: the layer clamps it
STD = "usr/lib/python3.11"


@pytest.fixture(autouse=True)
def _fresh_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    interp_mod._find.cache_clear()
    monkeypatch.delenv("REPRO_BUILD_BYTECODE_PYTHON", raising=False)


def _file(path: str, text: str, mtime: int = OLD) -> LayerEntry:
    return LayerEntry(path, "file", 0o644, text.encode(), mtime=mtime)


def _base_layer(store: BlobStore) -> Layer:
    """A Debian-shaped base layer: the stdlib, a dist-packages module, Debian's helpers, and what is not covered."""
    entries = [
        LayerEntry("usr", "dir", 0o755, mtime=OLD),
        LayerEntry("usr/lib", "dir", 0o755, mtime=OLD),
        LayerEntry(STD, "dir", 0o755, mtime=OLD + 1),
        LayerEntry(f"{STD}/json", "dir", 0o755, mtime=OLD + 2),
        LayerEntry("lib", "symlink", 0o777, target="usr/lib", mtime=OLD),
        _file(f"{STD}/os.py", "import sys\nSEP = '/'\n"),
        _file(f"{STD}/json/__init__.py", "from json.decoder import X\n", mtime=LATE),
        _file(f"{STD}/json/decoder.py", "X = 1\n"),
        _file(f"{STD}/zz_stdlib_probe.py", "VALUE = 42\n"),
        _file(f"{STD}/lib2to3/tests/data/py2_only.py", "print 'python 2'\n"),  # not valid Python 3
        _file(f"{STD}/_sysconfigdata__aarch64-linux-gnu.py", "build_time_vars = {}\n"),
        LayerEntry(
            f"{STD}/_sysconfigdata__linux_aarch64-linux-gnu.py",
            "symlink",
            0o777,
            target="_sysconfigdata__aarch64-linux-gnu.py",
            mtime=OLD,
        ),
        _file("etc/python3.11/sitecustomize.py", "# site customisation\n", mtime=OLD + 5),
        LayerEntry(f"{STD}/sitecustomize.py", "symlink", 0o777, target="/etc/python3.11/sitecustomize.py", mtime=OLD),
        LayerEntry(f"{STD}/dangling.py", "symlink", 0o777, target="/etc/python3.11/missing.py", mtime=OLD),
        _file(f"{STD}/LICENSE.txt", "not Python\n"),
        _file("usr/lib/python3/dist-packages/six.py", "PY3 = True\n"),
        _file("usr/share/python3/debpython/files.py", "def from_package(name): ...\n"),
        _file("usr/share/gcc/python/libstdcxx/printers.py", "# gdb helper, no postinst compiles it\n"),
        _file("usr/lib/python3.12/other.py", "# another version's tree\n"),
    ]
    return write_layer(entries, epoch=EPOCH, compressor=Compressor.gzip(), store=store, preserve_metadata=True)


def _compiler() -> Interpreter:
    return find_interpreter("3.11")


def _entries(tmp_path: Path, name: str = "scratch") -> dict[str, LayerEntry]:
    layer = _base_layer(BlobStore(tmp_path / "base"))
    found = stdlib_entries(
        layer, minor="3.11", epoch=EPOCH, interpreter=_compiler(), scratch=tmp_path / name, what="test base"
    )
    return {e.path: e for e in found}


def _pyc(path: str) -> str:
    head, _, name = path.rpartition("/")
    return f"{head}/__pycache__/{name.removesuffix('.py')}.cpython-311.pyc"


def test_what_debian_compiles_and_nothing_else(tmp_path: Path) -> None:
    entries = _entries(tmp_path)
    pycs = sorted(p for p, e in entries.items() if e.kind == "file")
    assert pycs == sorted(
        _pyc(p)
        for p in (
            f"{STD}/os.py",
            f"{STD}/json/__init__.py",
            f"{STD}/json/decoder.py",
            f"{STD}/zz_stdlib_probe.py",
            f"{STD}/_sysconfigdata__aarch64-linux-gnu.py",
            f"{STD}/_sysconfigdata__linux_aarch64-linux-gnu.py",  # a symlink, as dpkg -L lists it
            f"{STD}/sitecustomize.py",  # its link into /etc resolves
            "usr/lib/python3/dist-packages/six.py",
            "usr/share/python3/debpython/files.py",
        )
    )
    assert covered(f"{STD}/os.py", "3.11") and not covered("usr/lib/python3.12/other.py", "3.11")


def test_timestamp_pycs_of_the_in_image_sources(tmp_path: Path) -> None:
    """The header is py_compile's default (timestamp) with the mtime and size the source has in the image."""
    entries = _entries(tmp_path)

    def header(path: str) -> tuple[int, int, int, str]:
        data = entries[_pyc(path)].content
        assert isinstance(data, bytes) and data[:4] == importlib.util.MAGIC_NUMBER
        flags, mtime, size = (int.from_bytes(data[i : i + 4], "little") for i in (4, 8, 12))
        return flags, mtime, size, marshal.loads(data[16:]).co_filename

    assert header(f"{STD}/os.py") == (0, OLD, len("import sys\nSEP = '/'\n"), f"/{STD}/os.py")
    # A source newer than the epoch has the epoch in the layer, so the pyc records the epoch.
    assert header(f"{STD}/json/__init__.py")[1] == EPOCH
    # Through a symlink: the target's mtime and size (what stat() follows to), the link's path as co_filename.
    assert header(f"{STD}/sitecustomize.py") == (0, OLD + 5, len("# site customisation\n"), f"/{STD}/sitecustomize.py")
    pyc = entries[_pyc(f"{STD}/os.py")]
    assert (pyc.mode, pyc.uid, pyc.gid, pyc.mtime) == (0o644, 0, 0, EPOCH)
    assert entries[f"{STD}/__pycache__"].mode == 0o755
    # Directories the layer overlays keep the base layer's metadata.
    assert (entries[STD].mtime, entries[f"{STD}/json"].mtime) == (OLD + 1, OLD + 2)


def test_the_interpreter_uses_them_without_compiling(tmp_path: Path) -> None:
    """Laid out with the image's mtimes, the byte-code is what the interpreter imports: nothing compiled, nothing
    written (`python -v` says `matches` and reads the code object from the pyc)."""
    layer = _base_layer(BlobStore(tmp_path / "base"))
    written = write_stdlib_layer(
        layer,
        minor="3.11",
        epoch=EPOCH,
        interpreter=_compiler(),
        compressor=Compressor.gzip(),
        store=BlobStore(tmp_path / "out"),
        what="test base",
    )
    root = tmp_path / "root"
    for blob in (layer, written.layer):
        with blob.open_uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            tar.extractall(root, filter="tar")
    source = root / STD / "zz_stdlib_probe.py"
    assert int(source.stat().st_mtime) == OLD
    before = {p: p.lstat().st_mtime_ns for p in root.rglob("*")}
    out = subprocess.run(
        [
            str(_compiler().path),
            "-S",
            "-v",
            "-c",
            f"import sys; sys.path.insert(0, {str(root / STD)!r}); import zz_stdlib_probe",
        ],
        capture_output=True,
        text=True,
        env={"PYTHONDONTWRITEBYTECODE": ""},
        check=True,
    )
    pyc = root / _pyc(f"{STD}/zz_stdlib_probe.py")
    assert f"# {pyc} matches {source}" in out.stderr
    assert f"# code object from '{pyc}'" in out.stderr
    assert {p: p.lstat().st_mtime_ns for p in root.rglob("*")} == before


def test_bytes_depend_on_the_compiler_not_on_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Written twice, under another umask, time zone, locale and scratch directory and with the running
    interpreter unusable: the same layer, since only the pinned compiler runs."""
    first = _base_layer(BlobStore(tmp_path / "base"))

    def write(store: Path) -> Layer:
        return write_stdlib_layer(
            first,
            minor="3.11",
            epoch=EPOCH,
            interpreter=_compiler(),
            compressor=Compressor.gzip(),
            store=BlobStore(store),
            what="test base",
        ).layer

    one = write(tmp_path / "one")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.setenv("PYTHONHASHSEED", "12345")
    old_umask = os.umask(0o077)
    try:
        two = write(tmp_path / "two")
    finally:
        os.umask(old_umask)
    assert (one.digest, one.diff_id) == (two.digest, two.diff_id)


def test_the_cache_key_names_the_compiler(tmp_path: Path) -> None:
    base = new_image(default_config(Platform("linux", "arm64", "v8"), EPOCH), [_base_layer(BlobStore(tmp_path))])
    compiler = _compiler()
    other = Interpreter(compiler.path, "3.11.99", compiler.implementation, compiler.cache_tag)
    key = stdlib_key(base, compiler, Compressor.gzip())
    assert key == stdlib_key(base, compiler, Compressor.gzip())
    assert key != stdlib_key(base, other, Compressor.gzip())
    assert key != stdlib_key(base, compiler, Compressor.gzip(9))


# ------------------------------------------------------------------ in the engine, on the real Debian base

TAG = "repro-build-test-stdlib-pyc"
IMPORTS = "import json, re, ssl, decimal, asyncio, email.mime.text, sqlite3, sysconfig, sitecustomize"


@pytest.mark.network
@pytest.mark.slow
def test_the_image_interpreter_compiles_and_writes_nothing(tmp_path: Path, engine: Engine) -> None:
    root = bookworm_project(tmp_path / "pycprobe", "pycprobe", targets={"main": ""})
    cli = (sys.executable, "-m", "reprobuild")
    subprocess.run([*cli, "lock", "--project", str(root), "-q"], check=True)
    git_commit(root)
    built = subprocess.run(
        [*cli, "image", "--project", str(root), "--load", "--tag", f"{TAG}:main", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    name = f"{TAG}-{os.getpid()}"
    try:
        run = (engine.cli, "run", "--network", "none", "--entrypoint", "python3")
        ro = subprocess.run(
            [*run, "--rm", "--read-only", f"{TAG}:main", "-v", "-c", IMPORTS],
            capture_output=True,
            text=True,
            check=True,
        )
        loaded = [
            line.split(" from ", 1)[1] for line in ro.stderr.splitlines() if line.startswith("# code object from")
        ]
        assert len(loaded) > 50, ro.stderr[-2000:]
        assert [x for x in loaded if not x.endswith(".pyc'")] == []  # every module from byte-code, none compiled
        assert "bytecode is stale" not in ro.stderr
        # On a writable root file system nothing is written either.
        subprocess.run([*run, "--name", name, f"{TAG}:main", "-c", IMPORTS], capture_output=True, check=True)
        diff = subprocess.run([engine.cli, "diff", name], capture_output=True, text=True, check=True)
        assert diff.stdout.strip() == ""
        history = subprocess.run(
            [engine.cli, "history", "--no-trunc", "--format", "{{.CreatedBy}}", f"{TAG}:main"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "standard-library byte-code" in history.stdout and "compiled by cpython 3.11." in history.stdout
        manifest = json.loads((root / "build" / "main" / "manifest.json").read_text())
        assert manifest["bytecode"]["compiler"]["version"].startswith("3.11.")
    finally:
        subprocess.run([engine.cli, "rm", "-f", name], capture_output=True, check=False)
        subprocess.run([engine.cli, "rmi", "-f", f"{TAG}:main"], capture_output=True, check=False)
