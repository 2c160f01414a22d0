"""`repro-build verify`, `--image` and `diff`: pass on a fresh build; fail naming artifact and hazard class."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from reprobuild.cli.main import main
from reprobuild.manifest.schema import read_manifest
from reprobuild.manifest.verify import compare_manifests
from reprobuild.oci.image import Image, with_config
from reprobuild.oci.layout import read_layout, write_layout
from reprobuild.uvbin import find_uv
from tests.cli import run_cli
from tests.image.conftest import copy_project
from tests.image.fakebase import fake_base
from tests.testbed import Engine, Registry

pytestmark = pytest.mark.network


@pytest.fixture
def built(built_golden: Path) -> Path:
    """The golden project built once for the session (tests/conftest.py)."""
    return built_golden


def manifest_of(root: Path) -> Path:
    return root / "build" / "cpu" / "manifest.json"


def test_fresh_build_verifies(built: Path) -> None:
    out = run_cli("verify", str(manifest_of(built)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("verified: ") and out.stdout.strip().endswith("artifacts identical")
    as_json = run_cli("verify", str(manifest_of(built)), "--json")
    report = json.loads(as_json.stdout)
    assert report["identical"] and report["compared"] >= 6


def test_clean_clone_with_empty_cache_reproduces(built: Path, tmp_path: Path) -> None:
    clone = tmp_path / "elsewhere" / "clone"
    subprocess.run(["git", "clone", "-q", str(built), str(clone)], check=True)
    manifest = tmp_path / "manifest.json"
    shutil.copy(manifest_of(built), manifest)
    out = run_cli("verify", str(manifest), "--repo", str(clone), env={"REPRO_BUILD_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr
    assert "artifacts identical" in out.stdout


def test_offline_with_empty_cache_says_what_is_missing(built: Path, tmp_path: Path) -> None:
    out = run_cli("verify", str(manifest_of(built)), "--offline", env={"REPRO_BUILD_CACHE": str(tmp_path / "empty")})
    assert out.returncode == 2
    assert "not in the cache" in out.stderr and "six-1.17.0-py2.py3-none-any.whl" in out.stderr


def test_offline_with_a_warm_cache_reproduces_without_a_network(built: Path, tmp_path: Path) -> None:
    """`--offline` reaches every step (wheels and base from the cache, the project wheel's build backend from
    uv's cache): with every connection sent to a proxy that refuses it, the rebuild still succeeds. Without
    `--offline` the backend is taken from uv's cache first too, so that rebuild succeeds as well; uv asked
    for what only the index has fails, so the proxy does refuse."""
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing answers
    proxies = dict.fromkeys(("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"), nowhere)
    no_network = {**proxies, "NO_PROXY": "", "no_proxy": ""}
    out = run_cli("verify", str(manifest_of(built)), "--offline", env=no_network)
    assert out.returncode == 0, out.stderr
    assert "artifacts identical" in out.stdout
    online = run_cli("verify", str(manifest_of(built)), env=no_network)
    assert online.returncode == 0 and "artifacts identical" in online.stdout, online.stderr
    probe = subprocess.run(
        [find_uv(), "pip", "compile", "--no-cache", "--quiet", "-"],
        input="six==1.17.0\n",
        env={**os.environ, **no_network, "UV_CACHE_DIR": str(tmp_path / "uv-cache")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode != 0, probe.stdout


def _edited(built: Path, tmp_path: Path, edit: object) -> Path:
    data = json.loads(manifest_of(built).read_text())
    edit(data)  # type: ignore[operator]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    # Keep the original layout beside it, as `build/<target>/` has, for file-level explanations.
    shutil.copytree(manifest_of(built).parent / "oci", tmp_path / "oci")
    return path


def test_manifest_edited_by_hand_fails_naming_the_artifact(built: Path, tmp_path: Path) -> None:
    def edit(m: dict) -> None:  # type: ignore[type-arg]
        m["outputs"]["manifest_digest"] = "sha256:" + "0" * 64

    out = run_cli("verify", str(_edited(built, tmp_path, edit)), "--repo", str(built))
    assert out.returncode == 1
    assert "first: image manifest (digest)" in out.stdout


def test_edited_lock_is_named(built: Path, tmp_path: Path) -> None:
    def edit(m: dict) -> None:  # type: ignore[type-arg]
        m["locks"]["repro-locks/cpu.txt"] = "sha256:" + "1" * 64

    out = run_cli("verify", str(_edited(built, tmp_path, edit)), "--repo", str(built), "--json")
    assert out.returncode == 1
    result = json.loads(out.stdout)
    rebuilt = json.loads(manifest_of(built).read_text())["locks"]["repro-locks/cpu.txt"]
    assert result["divergences"][0] == {
        "artifact": "repro-locks/cpu.txt",
        "hazard": "lock changed",
        "details": [f"sha256:{'1' * 64} vs {rebuilt}"],
    }


def test_locks_recorded_under_the_old_directory_compare_by_file_name() -> None:
    """A manifest recorded while the locks lived in `locks/` verifies against a rebuild from `repro-locks/`."""
    old = read_manifest(Path(__file__).parent / "sample-manifest.json")
    assert all(key.startswith("locks/") for key in old.locks)
    moved = dataclasses.replace(old, locks={f"repro-{key}": value for key, value in old.locks.items()})
    assert [d for d in compare_manifests(old, moved)[1] if d.hazard == "lock changed"] == []
    edited = dict(moved.locks, **{"repro-locks/cpu.txt": "sha256:" + "c" * 64})
    changed = [
        d for d in compare_manifests(old, dataclasses.replace(moved, locks=edited))[1] if d.hazard == "lock changed"
    ]
    assert [d.artifact for d in changed] == ["repro-locks/cpu.txt"]


def test_dirty_manifest_is_refused(built: Path, tmp_path: Path) -> None:
    def edit(m: dict) -> None:  # type: ignore[type-arg]
        m["source"]["dirty"] = True

    out = run_cli("verify", str(_edited(built, tmp_path, edit)))
    assert out.returncode == 2 and "dirty work tree" in out.stderr


def test_missing_commit_is_an_error(built: Path, tmp_path: Path) -> None:
    def edit(m: dict) -> None:  # type: ignore[type-arg]
        m["source"]["commit"] = "f" * 40

    out = run_cli("verify", str(_edited(built, tmp_path, edit)), "--repo", str(built))
    assert out.returncode == 2 and "hint:" in out.stderr
    assert f"--repo, {built}: the commit is not in it" in out.stderr


def test_from_a_fresh_clone_with_the_manifest_beside_it(built: Path, tmp_path: Path) -> None:
    """`cd clone && repro-build verify ../manifest.json`: the current directory's repository holds the commit."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(built), str(clone)], check=True)
    shutil.copy(manifest_of(built), tmp_path / "manifest.json")
    out = run_cli("verify", "../manifest.json", cwd=clone)
    assert out.returncode == 0, out.stderr
    assert "artifacts identical" in out.stdout


def test_repo_url_is_cloned_not_joined_as_a_path(built: Path, tmp_path: Path) -> None:
    bare = tmp_path / "remote" / "golden.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(built), str(bare)], check=True)
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(manifest_of(built), loose / "manifest.json")
    out = run_cli("verify", "manifest.json", "--repo", bare.as_uri(), cwd=loose)
    assert out.returncode == 0, out.stderr
    assert f"cloning {bare.as_uri()} (--repo)" in out.stderr


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1 (git's "dumb" HTTP protocol needs nothing more)."""
    import functools
    import http.server
    import threading

    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_remote_recorded_in_the_manifest_is_cloned(built: Path, tmp_path: Path, served: tuple[Path, str]) -> None:
    """A third party with only the manifest: no repository at hand, so verify clones the recorded remote."""
    root, base_url = served
    project = tmp_path / "golden"
    shutil.copytree(built, project, ignore=shutil.ignore_patterns("build"))
    bare = root / "org" / "golden"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    subprocess.run(["git", "-C", str(project), "push", "-q", str(bare), "HEAD:refs/heads/main"], check=True)
    subprocess.run(["git", "-C", str(bare), "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    url = f"{base_url}/org/golden"
    subprocess.run(["git", "-C", str(project), "remote", "add", "origin", url], check=True)
    out = run_cli("image", "--project", str(project), "-q")
    assert out.returncode == 0, out.stderr
    recorded = json.loads(manifest_of(project).read_text())
    assert recorded["source"]["remote"] == url
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(manifest_of(project), loose / "manifest.json")
    out = run_cli("verify", "manifest.json", cwd=loose)
    assert out.returncode == 0, out.stderr
    assert f"cloning {url} (the remote recorded in the manifest)" in out.stderr
    assert "artifacts identical" in out.stdout


def test_no_repository_anywhere_names_what_was_tried(built: Path, tmp_path: Path) -> None:
    data = json.loads(manifest_of(built).read_text())
    data["source"]["remote"] = None
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    out = run_cli("verify", "manifest.json", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    for tried in ("the repository holding the manifest", "the current directory's repository", "records none"):
        assert tried in out.stderr
    assert "Traceback" not in out.stderr


# ------------------------------------------------------------------------------ --image (the gate)


def test_gate_on_layout_and_archive(built: Path) -> None:
    manifest = str(manifest_of(built))
    refs = (
        f"oci-layout:{built}/build/cpu/oci",
        f"oci:{built}/build/cpu/oci",
        f"oci-archive:{built}/build/cpu/image.tar",
        f"docker-archive:{built}/build/cpu/image.tar",
    )
    for ref in refs:
        out = run_cli("verify", manifest, "--image", ref)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.startswith("match:")
    # Bare paths that exist are the layout and the archive, read here, never looked up in a registry.
    for ref in ("build/cpu/oci", "build/cpu/image.tar"):
        out = run_cli("verify", manifest, "--image", ref, "--json", cwd=built)
        assert out.returncode == 0, out.stdout + out.stderr
        assert json.loads(out.stdout)["match"] is True
    missing = run_cli("verify", manifest, "--image", "./build/cpu/nowhere", cwd=built)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_gate_catches_a_flipped_byte_in_a_layer_blob(built: Path, tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    shutil.copytree(built / "build" / "cpu" / "oci", layout)
    image = read_layout(layout)
    assert isinstance(image, Image)
    blob = image.layers[-2].path  # the project layer
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    out = run_cli("verify", str(manifest_of(built)), "--image", f"oci-layout:{layout}", "--json")
    assert out.returncode == 1
    result = json.loads(out.stdout)
    assert any(str(image.layers[-2].digest) in p for p in result["problems"]), result


def test_gate_and_diff_catch_a_changed_env_var(built: Path, tmp_path: Path) -> None:
    image = read_layout(built / "build" / "cpu" / "oci")
    assert isinstance(image, Image)
    config = image.config
    config["config"]["Env"] = [e if not e.startswith("GOLDEN=") else "GOLDEN=2" for e in config["config"]["Env"]]
    changed = with_config(image, config)
    write_layout(tmp_path / "changed", changed)
    out = run_cli("verify", str(manifest_of(built)), "--image", f"oci-layout:{tmp_path / 'changed'}")
    assert out.returncode == 1 and "MISMATCH" in out.stdout and "config digest" in out.stderr
    diff = run_cli("diff", f"oci-layout:{built}/build/cpu/oci", f"oci-layout:{tmp_path / 'changed'}")
    assert diff.returncode == 1
    assert "image config: config env" in diff.stdout and "Env: added 'GOLDEN=2'" in diff.stdout


def test_gate_against_registry_and_engine(built: Path, registry: Registry, engine: Engine) -> None:
    manifest = str(manifest_of(built))
    ref = f"{registry.host}/golden/app:v1"
    assert main(["copy", f"oci-layout:{built}/build/cpu/oci", ref, "-q"]) == 0
    assert run_cli("verify", manifest, "--image", ref).returncode == 0
    # The wrong image under the expected tag: another build's image pushed over it.
    other = run_cli("copy", f"oci-layout:{built}/fakebase:base", ref, "-q")
    assert other.returncode == 0, other.stderr
    mismatch = run_cli("verify", manifest, "--image", ref, "--json")
    assert mismatch.returncode == 1 and not json.loads(mismatch.stdout)["match"]
    missing = run_cli("verify", manifest, "--image", f"{registry.host}/golden/absent:v1")
    assert missing.returncode == 2
    # The engine: image ID and diff_ids. (The fake base cannot run, but it loads.)
    assert main(["copy", f"oci-archive:{built}/build/cpu/image.tar", "docker-daemon:golden-app:verify", "-q"]) == 0
    assert run_cli("verify", manifest, "--image", "docker-daemon:golden-app:verify").returncode == 0
    assert main(["copy", f"oci-layout:{built}/fakebase:base", "docker-daemon:golden-app:verify", "-q"]) == 0
    assert run_cli("verify", manifest, "--image", "docker-daemon:golden-app:verify").returncode == 1


# ------------------------------------------------------------------------------ diff hazard classes


def _unversioned_copy(built: Path, dest: Path) -> Path:
    """A copy outside git: the epoch comes from the config, so no commit is needed."""
    other = copy_project(built, dest, git=False)
    shutil.rmtree(other / ".git")
    return other


def _rebuild_with(built: Path, tmp_path: Path, old: str, new: str) -> Path:
    other = _unversioned_copy(built, tmp_path / "other")
    pyproject = other / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(old, new))
    out = run_cli("image", "--project", str(other), "-q")
    assert out.returncode == 0, out.stderr
    return other


def test_diff_names_a_compression_change(built: Path, tmp_path: Path) -> None:
    other = _rebuild_with(built, tmp_path, "[tool.repro-build]\n", "[tool.repro-build]\ncompression = { level = 9 }\n")
    diff = run_cli("diff", f"oci-layout:{built}/build/cpu/oci", f"oci-layout:{other}/build/cpu/oci", "--json")
    assert diff.returncode == 1
    hazards = {d["artifact"]: d["hazard"] for d in json.loads(diff.stdout)["divergences"]}
    assert hazards, diff.stdout
    layer_hazards = {h for a, h in hazards.items() if a.startswith("layer")}
    assert layer_hazards == {"compression only"}, hazards


def test_diff_names_a_different_base(built: Path, tmp_path: Path) -> None:
    other = _unversioned_copy(built, tmp_path / "other")
    shutil.rmtree(other / "fakebase")
    text = fake_base(other / "fakebase", python="3.11.4")
    pyproject = other / "pyproject.toml"
    old = pyproject.read_text().split('base = "', 1)[1].split('"', 1)[0]
    new = text.replace(f"{other}/", "")
    pyproject.write_text(pyproject.read_text().replace(old, new))
    inputs = other / "repro-locks" / "inputs.json"
    inputs.write_text(inputs.read_text().replace(old, new))
    out = run_cli("image", "--project", str(other), "-q")
    assert out.returncode == 0, out.stderr
    diff = run_cli("diff", f"oci-layout:{built}/build/cpu/oci", f"oci-layout:{other}/build/cpu/oci", "--json")
    first = json.loads(diff.stdout)["divergences"][0]
    assert first["artifact"].startswith("layer 0") and first["hazard"] == "base changed"


def test_drift_of_the_byte_code_compiler_and_of_target_defaults_is_warned() -> None:
    import dataclasses

    from reprobuild.manifest.schema import Manifest
    from reprobuild.manifest.verify import bytecode_drift, target_drift
    from tests.manifest.schemacheck import sample

    data = sample()
    data["bytecode"]["compiler"]["version"] = "3.11.2"
    data["config"]["target"] = {"bytecode": "none", "python": "3.11"}
    recorded = Manifest.from_json(data)
    compiler = dataclasses.replace(recorded.bytecode.compiler, version="3.11.7")
    rebuilt = dataclasses.replace(recorded, bytecode=dataclasses.replace(recorded.bytecode, compiler=compiler))
    assert bytecode_drift(recorded, rebuilt) == [
        "byte-code compiler: the manifest has Python 3.11.2, this rebuild used Python 3.11.7"
    ]
    assert bytecode_drift(recorded, recorded) == []
    assert target_drift(recorded, {"bytecode": "unchecked-hash", "python": "3.11"}) == [
        "target setting bytecode: the manifest has 'none', this repro-build uses 'unchecked-hash'"
    ]
    assert target_drift(recorded, {"bytecode": "none", "python": "3.11"}) == []
