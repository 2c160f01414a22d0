"""``repro-build verify MANIFEST``: rebuild from the manifest's inputs alone and compare every digest.

The source is the recorded commit, checked out into a temporary work tree from a git repository
that holds it (:mod:`reprobuild.manifest.repo` says which; never the current work tree or config);
the wheels are the recorded files (by sha256, from the cache or the index); the epoch is the
recorded one. A manifest that records a dirty tree is refused: no commit holds what was built.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprobuild import __version__
from reprobuild.config import load_config
from reprobuild.distribution import COMMAND
from reprobuild.errors import ManifestError, ReproBuildError, ToolError
from reprobuild.image.build import build_image
from reprobuild.image.debianbase import debian_base
from reprobuild.image.projectwheel import wheel_step
from reprobuild.image.wheels import pin_from_dict
from reprobuild.manifest.record import image_manifest, read_manifest
from reprobuild.manifest.repo import repository_for
from reprobuild.manifest.semdiff import Divergence, diff_images
from reprobuild.manifest.validate import check_manifest, project_path, resolve_inside
from reprobuild.oci.image import Image
from reprobuild.oci.layout import read_layout, write_layout
from reprobuild.uvbin import uv_version


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of a rebuild: how many artifacts were compared and what diverged."""

    compared: int
    divergences: tuple[Divergence, ...]
    warnings: tuple[str, ...] = ()
    rebuilt: dict[str, Any] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not self.divergences

    def to_dict(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "divergences": [d.to_dict() for d in self.divergences],
            "identical": self.identical,
            "warnings": list(self.warnings),
        }


def drift_warnings(manifest: dict[str, Any], compressor: dict[str, Any]) -> list[str]:
    """Tool and compressor facts that differ between the manifest and what this machine would use."""
    tools = manifest.get("tools", {})
    warnings = []
    for name, installed in ((COMMAND, __version__), ("uv", uv_version())):
        if tools.get(name) not in (None, installed):
            warnings.append(f"{name} {installed} is installed; the manifest was built with {tools[name]}")
    recorded = manifest.get("compressor", {})
    for key in sorted(set(recorded) | set(compressor)):
        if recorded.get(key) != compressor.get(key):
            warnings.append(
                f"compressor {key}: the manifest has {recorded.get(key)!r}, this build uses {compressor.get(key)!r}"
            )
    return warnings


def bytecode_drift(recorded: dict[str, Any], rebuilt: dict[str, Any]) -> list[str]:
    """A warning when the byte-code compiler's version differs: a patch release may change pyc bytes."""
    old = recorded.get("bytecode", {}).get("compiler", {}).get("version")
    new = rebuilt.get("bytecode", {}).get("compiler", {}).get("version")
    if old is None or old == new:
        return []
    return [f"byte-code compiler: the manifest has Python {old}, this rebuild used Python {new}"]


def target_drift(recorded: dict[str, Any], effective: dict[str, Any]) -> list[str]:
    """Effective target settings that differ from the recorded ones, for the same commit: a default of
    this repro-build differs from the one that built the image (e.g. ``bytecode``)."""
    old = recorded.get("config", {}).get("target")
    if not isinstance(old, dict):
        return []
    return [
        f"target setting {key}: the manifest has {old.get(key)!r}, this repro-build uses {effective.get(key)!r}"
        for key in sorted(set(old) | set(effective))
        if old.get(key) != effective.get(key)
    ]


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


@contextlib.contextmanager
def checkout(repo: Path, commit: str, remote: str | None) -> Iterator[Path]:
    """A clean temporary checkout of ``commit`` whose ``origin`` is the recorded remote (or none)."""
    if _git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise ManifestError(
            f"commit {commit} is not in the repository {repo}",
            hint="fetch it (`git fetch --all`) or run verify in the repository that built the image",
        )
    with tempfile.TemporaryDirectory(prefix="repro-build-verify-") as tmp:
        src = Path(tmp) / "src"
        out = subprocess.run(
            ["git", "clone", "-q", "--shared", "--no-checkout", str(repo), str(src)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise ToolError(f"cloning {repo} for the rebuild failed: {out.stderr.strip()}")
        checked = _git(src, "checkout", "-q", "--detach", commit)
        if checked.returncode != 0:
            raise ToolError(f"checking out {commit} failed: {checked.stderr.strip()}")
        _git(src, "remote", "remove", "origin")
        if remote:
            _git(src, "remote", "add", "--", "origin", remote)
        yield src


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for the rebuild (the build steps read them), then restore them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def compare_manifests(recorded: dict[str, Any], rebuilt: dict[str, Any]) -> tuple[int, list[Divergence]]:
    """Artifact-by-artifact comparison of two image manifests: (number compared, divergences)."""
    out: list[Divergence] = []
    compared = 0
    for name in sorted(set(recorded.get("locks", {})) | set(rebuilt.get("locks", {}))):
        compared += 1
        a, b = recorded.get("locks", {}).get(name), rebuilt.get("locks", {}).get(name)
        if a != b:
            out.append(Divergence(name, "lock changed", (f"{a} vs {b}",)))
    rb, bb = recorded.get("base", {}), rebuilt.get("base", {})
    compared += 1
    if rb.get("manifest_digest") != bb.get("manifest_digest"):
        out.append(
            Divergence(
                f"base {rb.get('reference')}",
                "base changed",
                (f"{rb.get('manifest_digest')} vs {bb.get('manifest_digest')}",),
            )
        )
    wa = {w["name"]: w for w in recorded.get("wheels", [])}
    wb = {w["name"]: w for w in rebuilt.get("wheels", [])}
    for name in sorted(set(wa) | set(wb)):
        compared += 1
        if (wa.get(name) or {}).get("sha256") != (wb.get(name) or {}).get("sha256"):
            out.append(
                Divergence(
                    f"wheel {name}",
                    "lock changed",
                    (f"{(wa.get(name) or {}).get('filename')} vs {(wb.get(name) or {}).get('filename')}",),
                )
            )
    pa, pb = recorded.get("project_wheel") or {}, rebuilt.get("project_wheel") or {}
    if pa or pb:
        compared += 1
        if _artifact_sha(pa) != _artifact_sha(pb):
            out.append(
                Divergence(
                    "project wheel",
                    "content",
                    (
                        f"{_artifact_sha(pa)} vs {_artifact_sha(pb)}",
                        "run `repro-build wheel --check` to see which members differ",
                    ),
                )
            )
    oa, ob = recorded["outputs"], rebuilt["outputs"]
    la, lb = oa.get("layers", []), ob.get("layers", [])
    for i in range(max(len(la), len(lb))):
        compared += 1
        x, y = (la[i] if i < len(la) else {}), (lb[i] if i < len(lb) else {})
        if x.get("digest") == y.get("digest"):
            continue
        label = f"layer {i} ({x.get('holds') or y.get('holds')})"
        if x.get("diff_id") and x.get("diff_id") == y.get("diff_id"):
            out.append(
                Divergence(
                    label,
                    "compression only",
                    (f"same diff_id {x['diff_id']}", f"{x.get('digest')} vs {y.get('digest')}"),
                )
            )
        else:
            out.append(
                Divergence(
                    label,
                    "content" if x.get("holds") != "base" else "base changed",
                    (f"diff_id {x.get('diff_id')} vs {y.get('diff_id')}",),
                )
            )
    compared += _compare_attestations(recorded, rebuilt, out)
    for key in ("config_digest", "manifest_digest"):
        compared += 1
        if oa.get(key) != ob.get(key):
            out.append(
                Divergence(
                    key.replace("_digest", "").replace("_", " ") if key != "manifest_digest" else "image manifest",
                    "digest",
                    (f"{oa.get(key)} vs {ob.get(key)}",),
                )
            )
    return compared, out


def _compare_attestations(recorded: dict[str, Any], rebuilt: dict[str, Any], out: list[Divergence]) -> int:
    """The SBOMs (``attestations``) by file name: same bytes, same artifact manifest. A manifest written
    before SBOMs existed records none, and then nothing is compared."""
    if "attestations" not in recorded:
        return 0
    ra = {a.get("file"): a for a in recorded.get("attestations") or [] if isinstance(a, dict)}
    rb = {a.get("file"): a for a in rebuilt.get("attestations") or [] if isinstance(a, dict)}
    for name in sorted(set(ra) | set(rb), key=str):
        a, b = ra.get(name) or {}, rb.get(name) or {}
        if (a.get("sha256"), a.get("artifact_manifest")) != (b.get("sha256"), b.get("artifact_manifest")):
            out.append(
                Divergence(
                    f"attestation {name}",
                    "content",
                    (f"{a.get('sha256')} vs {b.get('sha256')}", "compare the two files to see which entries differ"),
                )
            )
    return len(set(ra) | set(rb))


def provenance_problem(path: Path) -> Divergence | None:
    """Whether ``provenance.json`` beside the manifest ``path`` is the one derived from it (None if absent)."""
    from reprobuild.attest.attach import PROVENANCE_FILE, provenance_document

    beside = path.parent / PROVENANCE_FILE
    if not beside.is_file():
        return None
    expected = provenance_document(path.read_bytes())
    if beside.read_bytes() == expected.data:
        return None
    return Divergence(
        PROVENANCE_FILE,
        "content",
        (f"it is not the provenance derived from {path.name} (expected sha256 {expected.digest})",),
    )


def _artifact_sha(record: dict[str, Any]) -> str | None:
    if "sha256" in record:
        return str(record["sha256"])
    for artifact in record.get("artifacts", []):
        if artifact.get("kind") == "wheel":
            return str(artifact.get("sha256"))
    return None


def verify_manifest(
    path: Path,
    *,
    repo: str | None = None,
    offline: bool = False,
    mirror: str | None = None,
    report: Path | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> VerifyResult:
    """Rebuild the image ``path`` describes and compare; see the module docstring."""
    manifest = read_manifest(path)
    if manifest.get("kind") != "image":
        raise ManifestError(f"{path} describes a {manifest.get('kind')!r}, not an image")
    check_manifest(manifest, path)  # nothing from the manifest is a path or an option until checked
    source = manifest["source"]
    if source.get("dirty"):
        raise ManifestError(
            f"{path} records a build from a dirty work tree: no commit holds what was built",
            hint="build from a clean tree (commit first), then verify that manifest",
        )
    if not source.get("commit"):
        raise ManifestError(f"{path} records no git commit", hint="build inside a git repository to make it verifiable")
    pins = [pin_from_dict(w) for w in manifest["wheels"]]
    with (
        repository_for(path, source["commit"], repo=repo, remote=source.get("remote"), log=log) as found,
        checkout(found, source["commit"], source.get("remote")) as src,
    ):
        relative = project_path(manifest.get("project", {}).get("path"), path=path)
        project = resolve_inside(src, relative, path=path)
        config = load_config(project)
        warnings = drift_warnings(manifest, config.compression.describe())
        warnings += target_drift(manifest, config.to_dict()["targets"].get(manifest["target"], {}))
        for w in warnings:
            log(f"warning: {w}")
        log(f"rebuilding {manifest['target']} of {config.project.name} at {source['commit'][:12]}")
        with (
            _environ(
                SOURCE_DATE_EPOCH=str(int(manifest["epoch"]["seconds"])),
                # Offline, the project wheel's build backend must come from uv's cache too.
                **({"UV_OFFLINE": "1"} if offline else {}),
            ),
            tempfile.TemporaryDirectory() as out_dir,
        ):
            result = build_image(
                config,
                manifest["target"],
                out_dir=Path(out_dir),
                project_wheel=wheel_step(),
                pins=pins,
                offline=offline,
                base_manifest=manifest["base"].get("manifest_digest"),
                use_cache=False,
                debian=functools.partial(debian_base, offline=offline, mirror=mirror, use_cache=False),
                log=log,
            )
            rebuilt = image_manifest(config, result)
            for w in bytecode_drift(manifest, rebuilt):
                log(f"warning: {w}")
                warnings.append(w)
            compared, divergences = compare_manifests(manifest, rebuilt)
            provenance = provenance_problem(path)
            compared += int((path.parent / "provenance.json").is_file())
            if provenance is not None:
                divergences.append(provenance)
            original = _original(path)
            if divergences and original is not None:
                names = [layer.get("holds", "") for layer in manifest["outputs"].get("layers", [])]
                bases = sum(1 for n in names if n == "base")
                detailed = diff_images(original, result.image, layer_names=names, base_layers=bases)
                divergences = _merge(divergences, detailed)
            if report is not None:
                _write_report(report, original, result.image, manifest, rebuilt)
    return VerifyResult(compared, tuple(divergences), tuple(warnings), rebuilt)


def _original(path: Path) -> Image | None:
    layout = path.parent / "oci"
    if not (layout / "index.json").is_file():
        return None
    try:
        artifact = read_layout(layout)
    except ReproBuildError:
        return None
    return artifact if isinstance(artifact, Image) else None


def _merge(summary: list[Divergence], detailed: list[Divergence]) -> list[Divergence]:
    """Prefer the file-level explanation of a layer or config over the digest-level one."""
    by_layer = {d.artifact.split(" (")[0]: d for d in detailed}
    merged = []
    for d in summary:
        key = d.artifact.split(" (")[0]
        merged.append(by_layer.pop(key, d) if key.startswith("layer") else d)
    merged.extend(d for d in detailed if d.artifact == "image config")
    return merged


def _write_report(
    report: Path, original: Image | None, rebuilt: Image, recorded: dict[str, Any], rebuilt_manifest: dict[str, Any]
) -> None:
    from reprobuild.fsutil import atomic_write_text, human_json_text, make_output_dir

    make_output_dir(report)
    shutil.rmtree(report / "rebuilt", ignore_errors=True)
    write_layout(report / "rebuilt", rebuilt)
    if original is not None:
        shutil.rmtree(report / "original", ignore_errors=True)
        write_layout(report / "original", original)
    atomic_write_text(report / "manifest.recorded.json", human_json_text(recorded))
    atomic_write_text(report / "manifest.rebuilt.json", human_json_text(rebuilt_manifest))
