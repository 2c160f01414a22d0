"""Multi-platform targets (`platforms = [...]`): one image per platform from per-platform locks and Debian
bases, one OCI index; pushed, verified and gated as an index; each platform's binaries are its machine's.

The fixture project (tests/image/multiplat-project) is built once for the module from its committed
locks (wheels and .debs fetched by the hashes they pin, then cached); every test reads that build.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reprobuild.cli.main import main
from reprobuild.oci.registry import RegistryClient
from tests.cli import run_cli
from tests.foundation.helpers import git_commit
from tests.image.conftest import HERE
from tests.testbed import Engine, Registry

PROJECT = HERE / "multiplat-project"
#: ELF ``e_machine`` values (System V gABI): EM_X86_64 and EM_AARCH64.
E_MACHINE = {"amd64": 62, "arm64": 183}
REPO = "multiplat-test/app"
#: The registry cache (`--cache`) the fixture's build shares its layers through, on the push's registry.
CACHE_REPO = "multiplat-test/cache"


def _elf_machine(data: bytes) -> int | None:
    """The ``e_machine`` of an ELF file's header, None for anything that is not ELF."""
    if len(data) < 20 or data[:4] != b"\x7fELF":
        return None
    order = "<" if data[5] == 1 else ">"
    machine: int = struct.unpack(f"{order}H", data[18:20])[0]
    return machine


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def _json(layout: Path, digest: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_blob(layout, digest))
    return data


TAG = "repro-build-test-multiplat:cpu"


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, registry: Registry, engine: Engine
) -> Iterator[tuple[Path, dict[str, Any], str]]:
    """The fixture project committed into git, built, pushed, loaded and smoke-tested once (one `image` run):
    (project root, its `image --json` record, its stderr)."""
    root = tmp_path_factory.mktemp("multiplat") / "project"
    shutil.copytree(PROJECT, root)
    (root / ".gitignore").write_text("build/\ndist/\n")
    git_commit(root)
    push = f"{registry.host}/{REPO}:v1"
    cache = f"{registry.host}/{CACHE_REPO}"
    try:
        out = run_cli(
            "image", "--project", str(root), "--push", push, "--cache", cache, "--smoke", "--tag", TAG, "--json"
        )
        assert out.returncode == 0, out.stderr
        (record,) = json.loads(out.stdout)["targets"]
        yield root, record, out.stderr
    finally:
        subprocess.run([engine.cli, "rmi", "-f", TAG], capture_output=True, check=False)


pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_the_committed_locks_are_per_platform_and_current() -> None:
    names = sorted(p.name for p in (PROJECT / "repro-locks").iterdir())
    assert names == [
        "base-bookworm-amd64.json",
        "base-bookworm-arm64.json",
        "build.txt",
        "cpu.amd64.txt",
        "cpu.arm64.txt",
        "inputs.json",
    ]
    assert main(["lock", "--project", str(PROJECT), "--check", "-q"]) == 0
    wheels = json.loads((PROJECT / "repro-locks" / "inputs.json").read_text())["locks"]
    assert next(w["filename"] for w in wheels["cpu.arm64.txt"]["wheels"]).endswith("_aarch64.whl")
    assert next(w["filename"] for w in wheels["cpu.amd64.txt"]["wheels"]).endswith("_x86_64.whl")


def test_one_index_lists_one_image_per_platform_in_order(built: tuple[Path, dict[str, Any], str]) -> None:
    root, record, _ = built
    layout = root / "build" / "cpu" / "oci"
    (entry,) = [m for m in json.loads((layout / "index.json").read_text())["manifests"] if "artifactType" not in m]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "cpu"
    assert entry["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert entry["digest"] == record["digest"]
    index = _json(layout, entry["digest"])
    platforms = [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]]
    assert platforms == [("linux", "amd64"), ("linux", "arm64")]
    assert [p["platform"] for p in record["platforms"]] == ["linux/amd64", "linux/arm64"]
    for desc, arch in zip(index["manifests"], ("amd64", "arm64"), strict=True):
        config = _json(layout, _json(layout, desc["digest"])["config"]["digest"])
        assert config["architecture"] == arch
        # The platform's own outputs, as a one-platform target has them, name the same image.
        own = root / "build" / "cpu" / f"linux-{arch}"
        assert json.loads((own / "manifest.json").read_text())["outputs"]["manifest_digest"] == desc["digest"]
    # Shared annotations only: the creation time and revision are, the per-platform base digest is not.
    assert "org.opencontainers.image.created" in index["annotations"]
    assert "org.opencontainers.image.base.digest" not in index["annotations"]


def test_each_platform_holds_its_machines_binaries(built: tuple[Path, dict[str, Any], str]) -> None:
    """The interpreter and the libraries of the base, and the wheel's C extension, are ELF files of the
    platform's machine in every layer of its image: nothing of the host (amd64) enters the arm64 image."""
    root, _, _ = built
    for arch, machine in E_MACHINE.items():
        layout = root / "build" / "cpu" / f"linux-{arch}" / "oci"
        (desc,) = [m for m in json.loads((layout / "index.json").read_text())["manifests"] if "artifactType" not in m]
        found: dict[str, int] = {}
        for layer in _json(layout, desc["digest"])["layers"]:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(_blob(layout, layer["digest"])))) as tar:
                for member in tar:
                    if not member.isfile() or not (".so" in member.name or member.name.endswith("bin/python3.11")):
                        continue
                    f = tar.extractfile(member)
                    assert f is not None
                    value = _elf_machine(f.read(64))
                    if value is not None:
                        found[member.name] = value
        assert {name for name, value in found.items() if value != machine} == set(), arch
        names = list(found)
        assert any(n.endswith("usr/bin/python3.11") for n in names)
        assert any("markupsafe/_speedups" in n and n.endswith(".so") for n in names)
        assert any("libc.so.6" in n for n in names)


def test_the_index_is_pushed_with_each_platforms_attachments(
    built: tuple[Path, dict[str, Any], str], registry: Registry
) -> None:
    _, record, _ = built
    assert record["pushed"] == f"{registry.host}/{REPO}@{record['digest']}"
    assert record["attachments"]["count"] == 6  # SPDX, CycloneDX and provenance of each platform
    with RegistryClient(registry.host) as client:
        data, _, served = client.get_manifest(REPO, "v1")
        assert served == record["digest"]
        children = [m["digest"] for m in json.loads(data)["manifests"]]
        for child in children:
            client.get_manifest(REPO, child)  # each platform's image is there too
    assert children == [p["digest"] for p in record["platforms"]]


def test_the_index_push_mounts_the_layers_the_cache_holds(
    built: tuple[Path, dict[str, Any], str], registry: Registry
) -> None:
    """`--push` to the registry of `--cache`: each platform's layers the cache holds are mounted from it,
    as a one-platform target's are (tests/image/test_registry_cache.py), not uploaded again."""
    _, record, stderr = built
    held = set()
    with RegistryClient(registry.host) as client:
        for tag in client.list_tags(CACHE_REPO):
            if tag.startswith("layer-"):
                data, _, _ = client.get_manifest(CACHE_REPO, tag)
                held |= {layer["digest"] for layer in json.loads(data)["layers"]}
    in_images = {layer["digest"] for p in record["platforms"] for layer in p["layers"]}
    # At least the project's and the app's layers: a layer-cache hit is shared with the registry cache.
    assert len(held & in_images) >= 2
    mounted = {
        line.split(" to ")[0].rsplit(" ", 1)[1]
        for line in stderr.splitlines()
        if line.endswith(f"mounted from {CACHE_REPO}")
    }
    assert mounted == {digest[: len("sha256:") + 12] for digest in held & in_images}, stderr


def test_verify_rebuilds_every_platform_and_the_index(built: tuple[Path, dict[str, Any], str]) -> None:
    root, _, _ = built
    out = run_cli("verify", str(root / "build" / "cpu" / "manifest.json"), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["identical"] is True
    assert "platform linux/arm64" in out.stderr


def test_the_gate_takes_the_index(built: tuple[Path, dict[str, Any], str], registry: Registry) -> None:
    root, record, _ = built
    manifest = str(root / "build" / "cpu" / "manifest.json")
    for ref in (f"{registry.host}/{REPO}:v1", f"{root / 'build' / 'cpu' / 'oci'}:cpu"):
        out = run_cli("verify", manifest, "--image", ref, "--json")
        assert out.returncode == 0, out.stderr
        gate = json.loads(out.stdout)
        assert gate["match"] is True and gate["found"]["index_digest"] == record["digest"]
    # An engine holds this machine's platform only: that image is checked, and the result says so.
    out = run_cli("verify", manifest, "--image", f"docker-daemon:{TAG}", "--json")
    assert out.returncode == 0, out.stderr
    assert "only the linux/amd64 image was checked" in json.loads(out.stdout)["found"]["note"]
    # One platform's image is not the index.
    single = f"{root / 'build' / 'cpu' / 'linux-arm64' / 'oci'}:cpu"
    out = run_cli("verify", manifest, "--image", single, "--json")
    assert out.returncode == 1
    assert any("is one image, not an index" in p for p in json.loads(out.stdout)["problems"])
    # An index whose manifest names other bytes is refused.
    edited = json.loads(Path(manifest).read_text())
    edited["index"]["digest"] = "sha256:" + "0" * 64
    other = root.parent / "edited-manifest.json"
    other.write_text(json.dumps(edited))
    out = run_cli("verify", str(other), "--image", f"{registry.host}/{REPO}:v1", "--json")
    assert out.returncode == 1
    assert any(p.startswith("index digest ") for p in json.loads(out.stdout)["problems"])


def test_load_and_smoke_use_this_machines_platform_only(built: tuple[Path, dict[str, Any], str]) -> None:
    _, record, stderr = built
    assert "loading the linux/amd64 image only" in stderr
    assert "on linux/amd64 only" in stderr
    assert record["smoke"]["output"].split() == ["&lt;multi-app&gt;", "x86_64", "markupsafe._speedups"]
    amd64 = next(p for p in record["platforms"] if p["platform"] == "linux/amd64")
    assert record["loaded"] == {"image_id": amd64["config_digest"], "tag": TAG}
