"""Building the base: bit-identical from clean caches, offline, tamper-proof, and it runs in the engine."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from reprobuild.base.debian.build import BaseBuild, build_base, write_outputs
from reprobuild.base.debian.deb822 import iter_stanzas
from reprobuild.base.debian.fetch import DebCache
from reprobuild.base.debian.lock import make_lock
from reprobuild.cli.main import main
from reprobuild.errors import BaseImageError
from reprobuild.oci.archive import write_archive
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import append_layers, with_config
from reprobuild.oci.layer import write_layer
from reprobuild.oci.tarwriter import entries_from_tree
from reprobuild.oci.validate import validate_image
from reprobuild.uvbin import find_uv
from tests.base.conftest import LockedBase
from tests.testbed import Engine, free_port

pytestmark = [pytest.mark.network, pytest.mark.slow]

IMPORTS = (
    "import ssl, sqlite3, ctypes, zlib, lzma, bz2, json, decimal, uuid; "
    "c = ssl.create_default_context(); n = c.cert_store_stats()['x509_ca']; "
    "assert n > 100, n; sqlite3.connect(':memory:').execute('select 1'); "
    "import os, pwd, socket, zoneinfo, tempfile; zoneinfo.ZoneInfo('Europe/Paris'); "  # tzdata
    "assert socket.getservbyname('https') == 443; tempfile.mkstemp(); "  # netbase, /tmp 1777
    "print('ok', os.getuid(), pwd.getpwuid(os.getuid()).pw_name, n)"
)


def _build(locked: LockedBase, cache: DebCache, out: Path, **kwargs: object) -> BaseBuild:
    return build_base(locked.lock, cache=cache, store=BlobStore(out), **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def clean_builds(
    locked_base: LockedBase, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BaseBuild, BaseBuild, Path]:
    """Two builds, each downloading every .deb into its own empty cache; the second under another
    umask, time zone and locale, so nothing of the host leaks into the bytes."""
    root = tmp_path_factory.mktemp("clean")
    first = _build(locked_base, DebCache(root / "cache1"), root / "blobs1")
    old_umask = os.umask(0o077)
    saved = {k: os.environ.get(k) for k in ("TZ", "LC_ALL")}
    os.environ.update(TZ="Pacific/Kiritimati", LC_ALL="C")
    try:
        second = _build(locked_base, DebCache(root / "cache2"), root / "blobs2", workers=1)
    finally:
        os.umask(old_umask)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return first, second, root


def test_bit_identical_from_clean_caches(
    clean_builds: tuple[BaseBuild, BaseBuild, Path], locked_base: LockedBase
) -> None:
    first, second, root = clean_builds
    blobs = {p.name for p in (root / "cache1" / "blobs" / "sha256").iterdir()}
    assert blobs == {deb.sha256 for deb in locked_base.lock.packages}  # every .deb, once, in the one store
    assert first.image.manifest_bytes == second.image.manifest_bytes
    assert first.image.config_bytes == second.image.config_bytes
    assert first.image.layers[0].digest == second.image.layers[0].digest
    assert first.info == second.info
    validate_image(first.image)


def test_offline_from_warm_cache(
    clean_builds: tuple[BaseBuild, BaseBuild, Path], locked_base: LockedBase, tmp_path: Path
) -> None:
    first, _, root = clean_builds
    unreachable = f"http://127.0.0.1:{free_port()}/debian"
    again = _build(locked_base, DebCache(root / "cache1"), tmp_path / "a", mirror=unreachable)
    assert again.image.digest == first.image.digest
    strict = _build(locked_base, DebCache(root / "cache1"), tmp_path / "b", offline=True)
    assert strict.image.digest == first.image.digest


def test_tampered_cache_is_refetched_or_refused(
    clean_builds: tuple[BaseBuild, BaseBuild, Path], locked_base: LockedBase, tmp_path: Path
) -> None:
    first, _, root = clean_builds
    cache = DebCache(root / "cache2")
    libc = next(p for p in locked_base.lock.packages if p.name == "libc6")
    entry = cache.path(libc.sha256)
    good = entry.read_bytes()
    entry.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    unreachable = f"http://127.0.0.1:{free_port()}/debian"
    with pytest.raises(BaseImageError, match=r"libc6 .*downloading|downloading libc6"):
        _build(locked_base, cache, tmp_path / "refused", mirror=unreachable)
    assert not entry.exists()  # the bad entry is gone, nothing was built from it
    entry.write_bytes(b"tampered")
    rebuilt = _build(locked_base, cache, tmp_path / "refetched")
    assert rebuilt.image.digest == first.image.digest
    assert entry.read_bytes() == good


def test_dpkg_status_and_generated_files(
    clean_builds: tuple[BaseBuild, BaseBuild, Path], locked_base: LockedBase
) -> None:
    first, _, _ = clean_builds
    with first.image.layers[0].open_uncompressed() as f, tarfile.open(fileobj=f, mode="r|") as tf:
        members: dict[str, tarfile.TarInfo] = {}
        contents: dict[str, bytes] = {}
        for m in tf:
            members[m.name] = m
            if m.name in ("var/lib/dpkg/status", "etc/os-release", "usr/lib/os-release", "etc/passwd") and m.isreg():
                fh = tf.extractfile(m)
                assert fh is not None
                contents[m.name] = fh.read()
    status = list(iter_stanzas(contents["var/lib/dpkg/status"].decode(), "status"))
    assert [(s["Package"], s["Version"]) for s in status] == [(p.name, p.version) for p in locked_base.lock.packages]
    assert members["etc/os-release"].issym() and b"VERSION_CODENAME=bookworm" in contents["usr/lib/os-release"]
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert members["usr/bin/python3"].issym()
    assert members["tmp"].mode == 0o1777 and members["root"].mode == 0o700
    assert (members["home/nonroot"].uid, members["home/nonroot"].mode) == (65532, 0o700)
    assert all(m.mtime <= first.info["epoch"] for m in members.values())
    assert all(not (m.mode & 0o6000) for m in members.values() if m.isreg())
    assert all(m.uid == 0 for name, m in members.items() if name != "home/nonroot")


@pytest.fixture(scope="module")
def loaded_base(
    clean_builds: tuple[BaseBuild, BaseBuild, Path], engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    first, _, _ = clean_builds
    out = tmp_path_factory.mktemp("out")
    outputs = write_outputs(first, out, suite="bookworm", arch="amd64")
    loaded = subprocess.run(
        [engine.cli, "load", "-i", str(outputs.archive)], capture_output=True, text=True, check=True
    )
    assert outputs.repo_tag in loaded.stdout
    image_id = subprocess.run(
        [engine.cli, "image", "inspect", "--format", "{{.Id}}", outputs.repo_tag],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert image_id == str(first.image.config_digest)  # the engine kept our config byte for byte
    yield outputs.repo_tag
    subprocess.run([engine.cli, "rmi", "-f", outputs.repo_tag], capture_output=True, check=False)


@pytest.mark.engine
@pytest.mark.parametrize("user", [None, "65532", "nonroot"])
def test_runs_in_the_engine(loaded_base: str, engine: Engine, user: str | None) -> None:
    args = [engine.cli, "run", "--rm", "--network", "none"]
    if user is not None:
        args += ["--user", user]
    proc = subprocess.run([*args, loaded_base, "python3", "-c", IMPORTS], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok 0 root " if user is None else "ok 65532 nonroot ")


@pytest.fixture(scope="module")
def numpy_tree() -> Path:
    """numpy (a manylinux cp311 wheel with compiled extensions) installed by uv into a plain directory."""
    target = Path.home() / ".cache" / "repro-build-tests" / "numpy-cp311-manylinux_2_28"
    if not (target / "numpy" / "__init__.py").is_file():
        subprocess.run(
            [
                find_uv(), "pip", "install", "--quiet", "--target", str(target), "--only-binary", ":all:",
                "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28", "numpy<2.3",
            ],
            check=True,
        )  # fmt: skip
    return target


@pytest.mark.engine
def test_numpy_wheel_on_top(
    clean_builds: tuple[BaseBuild, BaseBuild, Path], engine: Engine, numpy_tree: Path, tmp_path: Path
) -> None:
    first, _, _ = clean_builds
    store = BlobStore(tmp_path / "blobs")
    layer = write_layer(
        entries_from_tree(numpy_tree, prefix="/opt/site"),
        epoch=first.info["epoch"],
        compressor=Compressor.gzip(),
        store=store,
    )
    image = append_layers(first.image, layer)
    config = image.config
    config["config"]["Env"] = [*config["config"]["Env"], "PYTHONPATH=/opt/site"]
    image = with_config(image, config)
    archive = tmp_path / "numpy.tar"
    write_archive(archive, image, repo_tags=["repro-build-base-test:numpy"])
    subprocess.run([engine.cli, "load", "-i", str(archive)], capture_output=True, check=True)
    try:
        code = "import numpy as np; a = np.arange(12.0).reshape(3, 4); print(np.trace(a @ a.T))"
        for user in ("0", "65532"):
            proc = subprocess.run(
                [
                    engine.cli,
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--user",
                    user,
                    "repro-build-base-test:numpy",
                    "python3",
                    "-c",
                    code,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.split() == ["506.0"]  # sum of squares of 0..11, through numpy's BLAS
    finally:
        subprocess.run([engine.cli, "rmi", "-f", "repro-build-base-test:numpy"], capture_output=True, check=False)


def test_build_info_records_the_inputs(
    clean_builds: tuple[BaseBuild, BaseBuild, Path], locked_base: LockedBase
) -> None:
    info = clean_builds[0].info
    assert info["epoch"] == locked_base.lock.release_epoch
    assert info["release_sha256"] == locked_base.lock.release["sha256"]
    assert info["packages"] == [f"{p.name}={p.version}" for p in locked_base.lock.packages]
    assert info["compressor"]["algorithm"] == "gzip"
    assert "/etc/passwd" in info["generated"] and "/var/lib/dpkg/status" in info["generated"]
    assert isinstance(info["dropped_setid"], list) and isinstance(info["skipped_devices"], list)


def test_cli_build_then_offline(
    clean_builds: tuple[BaseBuild, BaseBuild, Path],
    locked_base: LockedBase,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, _, _ = clean_builds
    args = ["base", "build", "--lock", str(locked_base.path), "--cache", str(locked_base.cache.root)]
    args += ["--project", str(tmp_path), "--suite", "bookworm", "--arch", "amd64"]
    assert main([*args, "--output", str(tmp_path / "online")]) == 0
    assert capsys.readouterr().out.strip() == str(first.image.digest)
    assert main([*args, "--output", str(tmp_path / "offline"), "--offline"]) == 0
    assert capsys.readouterr().out.strip() == str(first.image.digest)
    for out in ("online", "offline"):
        assert (tmp_path / out / "base-bookworm-amd64.tar").is_file()
        assert (tmp_path / out / "oci" / "index.json").is_file()
        assert json.loads((tmp_path / out / "build-info.json").read_text())["image_digest"] == str(first.image.digest)
    assert (tmp_path / "online" / "base-bookworm-amd64.tar").read_bytes() == (
        tmp_path / "offline" / "base-bookworm-amd64.tar"
    ).read_bytes()
    # An empty cache offline is refused with a clear message, and nothing is written.
    assert main([*args[:5], str(tmp_path / "empty"), *args[6:], "--output", str(tmp_path / "x"), "--offline"]) == 2
    assert "not in the cache" in capsys.readouterr().err
    assert not (tmp_path / "x" / "base-bookworm-amd64.tar").exists()


@pytest.mark.engine
def test_with_updates_and_security(locked_base: LockedBase, engine: Engine, tmp_path: Path) -> None:
    """Extra suites: packages come from the newest suite and download from that suite's own mirror."""
    suites = (("bookworm-security", None), ("bookworm-updates", None))
    lock = make_lock(replace(locked_base.inputs, extra_suites=suites), locked_base.cache)
    from_security = {p.name for p in lock.packages if p.suite == "bookworm-security"}
    assert from_security, "the security suite updates nothing in this set"
    assert lock.mirror_for("bookworm-security") != lock.mirror_for("bookworm")
    built = build_base(lock, cache=locked_base.cache, store=BlobStore(tmp_path / "blobs"))
    assert built.info["epoch"] == lock.release_epoch >= locked_base.lock.release_epoch
    outputs = write_outputs(built, tmp_path / "out", suite="bookworm", arch="amd64-security-test")
    subprocess.run([engine.cli, "load", "-i", str(outputs.archive)], capture_output=True, check=True)
    try:
        code = IMPORTS + "; import ssl; print(ssl.OPENSSL_VERSION)"
        proc = subprocess.run(
            [
                engine.cli,
                "run",
                "--rm",
                "--network",
                "none",
                "--user",
                "65532",
                outputs.repo_tag,
                "python3",
                "-c",
                code,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        libssl = next(p for p in lock.packages if p.name == "libssl3")
        assert libssl.version.split("-")[0] in proc.stdout  # the OpenSSL the lock pinned, e.g. 3.0.22
    finally:
        subprocess.run([engine.cli, "rmi", "-f", outputs.repo_tag], capture_output=True, check=False)
