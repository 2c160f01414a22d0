"""``repro-build verify MANIFEST``: rebuild from the manifest's inputs alone and compare every digest.

The source is the recorded commit, checked out into a temporary work tree from a git repository
that holds it (:mod:`reprobuild.manifest.repo` says which; never the current work tree or config);
the wheels are the recorded files (by sha256, from the cache or the index); the epoch is the
recorded one. A manifest that records a dirty tree is refused: no commit holds what was built.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from reprobuild import __version__
from reprobuild.config import load_config, target_record
from reprobuild.distribution import COMMAND
from reprobuild.epoch import Epoch
from reprobuild.errors import ManifestError, ReproBuildError, ToolError
from reprobuild.image.build import build_image
from reprobuild.image.debianbase import debian_base
from reprobuild.image.projectwheel import wheel_step
from reprobuild.image.wheels import WheelPin
from reprobuild.manifest.record import image_manifest
from reprobuild.manifest.repo import repository_for
from reprobuild.manifest.schema import JsonObject, JsonValue, Layer, Manifest, Wheel, manifest_text
from reprobuild.manifest.semdiff import Divergence, diff_images
from reprobuild.manifest.validate import project_path, resolve_inside
from reprobuild.oci.image import Image
from reprobuild.oci.layout import read_layout, write_layout
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.uvbin import uv_version


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of a rebuild: how many artifacts were compared and what diverged."""

    compared: int
    divergences: tuple[Divergence, ...]
    warnings: tuple[str, ...] = ()
    rebuilt: Manifest | None = None
    #: The rebuilt image (its manifest and config; its layer files are gone once the rebuild returns).
    image: Image | None = None

    @property
    def identical(self) -> bool:
        return not self.divergences

    def to_dict(self) -> JsonObject:
        return {
            "compared": self.compared,
            "divergences": [d.to_dict() for d in self.divergences],
            "identical": self.identical,
            "warnings": list(self.warnings),
        }


def drift_warnings(manifest: Manifest, compressor: Mapping[str, JsonValue]) -> list[str]:
    """Tool and compressor facts that differ between the manifest and what this machine would use."""
    warnings = []
    for name, recorded, installed in (
        (COMMAND, manifest.tools.repro_build, __version__),
        ("uv", manifest.tools.uv, uv_version()),
    ):
        if recorded != installed:
            warnings.append(f"{name} {installed} is installed; the manifest was built with {recorded}")
    warnings += _differences("compressor ", manifest.compressor, compressor, "this build uses")
    return warnings


def bytecode_drift(recorded: Manifest, rebuilt: Manifest) -> list[str]:
    """A warning when the byte-code compiler's version differs: a patch release may change pyc bytes."""
    old, new = recorded.bytecode.compiler.version, rebuilt.bytecode.compiler.version
    if old == new:
        return []
    return [f"byte-code compiler: the manifest has Python {old}, this rebuild used Python {new}"]


def target_drift(recorded: Manifest, effective: Mapping[str, JsonValue]) -> list[str]:
    """Effective target settings that differ from the recorded ones, for the same commit: a default of
    this repro-build differs from the one that built the image (e.g. ``bytecode``)."""
    return _differences("target setting ", recorded.config.target, effective, "this repro-build uses")


def _differences(
    what: str, recorded: Mapping[str, JsonValue], current: Mapping[str, JsonValue], uses: str
) -> list[str]:
    return [
        f"{what}{key}: the manifest has {recorded.get(key)!r}, {uses} {current.get(key)!r}"
        for key in sorted(set(recorded) | set(current))
        if recorded.get(key) != current.get(key)
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


def _by_file_name(locks: Mapping[str, str | None]) -> dict[str, tuple[str, str | None]]:
    """``{file name: (recorded key, sha256)}`` of a manifest's ``locks`` (keys are ``<dir>/<file>``)."""
    return {key.rsplit("/", 1)[-1]: (key, value) for key, value in locks.items()}


def compare_manifests(recorded: Manifest, rebuilt: Manifest) -> tuple[int, list[Divergence]]:
    """Artifact-by-artifact comparison of two image manifests: (number compared, divergences)."""
    out: list[Divergence] = []
    compared = 0
    # Keyed by file name: a manifest recorded while the locks lived in `locks/` compares with one
    # rebuilt from `repro-locks/` (the directory's name is no input of the image).
    rec_locks, new_locks = _by_file_name(recorded.locks), _by_file_name(rebuilt.locks)
    for file_name in sorted(set(rec_locks) | set(new_locks)):
        compared += 1
        (name_a, a), (name_b, b) = rec_locks.get(file_name, ("", None)), new_locks.get(file_name, ("", None))
        name = name_b or name_a
        if a != b:
            out.append(Divergence(name, "lock changed", (f"{a} vs {b}",)))
    rb, bb = recorded.base, rebuilt.base
    compared += 1
    if rb.manifest_digest != bb.manifest_digest:
        out.append(
            Divergence(f"base {rb.reference}", "base changed", (f"{rb.manifest_digest} vs {bb.manifest_digest}",))
        )
    wa: dict[str, Wheel] = {w.name: w for w in recorded.wheels}
    wb: dict[str, Wheel] = {w.name: w for w in rebuilt.wheels}
    for name in sorted(set(wa) | set(wb)):
        compared += 1
        x, y = wa.get(name), wb.get(name)
        if (x and x.sha256) != (y and y.sha256):
            out.append(Divergence(f"wheel {name}", "lock changed", (f"{x and x.filename} vs {y and y.filename}",)))
    if recorded.project_wheel or rebuilt.project_wheel:
        compared += 1
        pa, pb = recorded.project_wheel_sha256(), rebuilt.project_wheel_sha256()
        if pa != pb:
            out.append(
                Divergence(
                    "project wheel",
                    "content",
                    (f"{pa} vs {pb}", "run `repro-build wheel --check` to see which members differ"),
                )
            )
    oa, ob = recorded.outputs, rebuilt.outputs
    la, lb = oa.layers, ob.layers
    for i in range(max(len(la), len(lb))):
        compared += 1
        x_layer: Layer | None = la[i] if i < len(la) else None
        y_layer: Layer | None = lb[i] if i < len(lb) else None
        if x_layer is not None and y_layer is not None and x_layer.digest == y_layer.digest:
            continue
        holds = (x_layer.holds if x_layer else "") or (y_layer.holds if y_layer else "")
        label = f"layer {i} ({holds})"
        x_diff, y_diff = x_layer and x_layer.diff_id, y_layer and y_layer.diff_id
        if x_diff and x_diff == y_diff:
            out.append(
                Divergence(
                    label,
                    "compression only",
                    (f"same diff_id {x_diff}", f"{x_layer and x_layer.digest} vs {y_layer and y_layer.digest}"),
                )
            )
        else:
            hazard = "base changed" if x_layer is not None and x_layer.holds == "base" else "content"
            out.append(Divergence(label, hazard, (f"diff_id {x_diff} vs {y_diff}",)))
    compared += _compare_attestations(recorded, rebuilt, out)
    for name, a_digest, b_digest in (
        ("config", oa.config_digest, ob.config_digest),
        ("image manifest", oa.manifest_digest, ob.manifest_digest),
    ):
        compared += 1
        if a_digest != b_digest:
            out.append(Divergence(name, "digest", (f"{a_digest} vs {b_digest}",)))
    return compared, out


def _compare_attestations(recorded: Manifest, rebuilt: Manifest, out: list[Divergence]) -> int:
    """The SBOMs (``attestations``) by file name: same bytes, same artifact manifest. A manifest written
    before SBOMs existed records none, and then nothing is compared."""
    if recorded.attestations is None:
        return 0
    ra = {a.file: a for a in recorded.attestations}
    rb = {a.file: a for a in rebuilt.attestations or ()}
    for name in sorted(set(ra) | set(rb)):
        a, b = ra.get(name), rb.get(name)
        if (a and (a.sha256, a.artifact_manifest)) != (b and (b.sha256, b.artifact_manifest)):
            out.append(
                Divergence(
                    f"attestation {name}",
                    "content",
                    (f"{a and a.sha256} vs {b and b.sha256}", "compare the two files to see which entries differ"),
                )
            )
    return len(set(ra) | set(rb))


def provenance_problem(beside: Path, manifest: Manifest) -> Divergence | None:
    """Whether ``provenance.json`` in the directory ``beside`` is the one derived from ``manifest`` (as
    ``image`` wrote it); None if there is none."""
    from reprobuild.attest.attach import PROVENANCE_FILE, provenance_document

    found = beside / PROVENANCE_FILE
    if not found.is_file():
        return None
    expected = provenance_document(manifest_text(manifest).encode("utf-8"))
    if found.read_bytes() == expected.data:
        return None
    return Divergence(
        PROVENANCE_FILE,
        "content",
        (f"it is not the provenance derived from the manifest (expected sha256 {expected.digest})",),
    )


def _silent(message: str) -> None:
    """The default ``log``: say nothing."""


@dataclass(frozen=True)
class RebuildOptions:
    """How ``verify`` rebuilds, the same for an image and for each platform of an index."""

    #: The git repository that holds the recorded commit (:func:`reprobuild.manifest.repo.repository_for`).
    repo: str | None = None
    #: Every wheel, the build backend and the base from the caches only.
    offline: bool = False
    #: The Debian mirror for a Debian base's packages (the lock's hashes decide the bytes).
    mirror: str | None = None
    #: A directory for both sides of each comparison (``verify --report DIR``).
    report: Path | None = None
    log: Callable[[str], None] = _silent
    progress: Progress = NO_PROGRESS

    def below(self, sub: str) -> RebuildOptions:
        """These options with the report in ``sub`` of this one's (one platform's of an index)."""
        return replace(self, report=None if self.report is None else self.report / sub)


def verify_image(
    manifest: Manifest, path: Path, options: RebuildOptions, *, beside: Path | None = None
) -> VerifyResult:
    """Rebuild the image ``manifest`` (read from ``path``, or embedded in the index manifest ``path``)
    describes and compare. ``beside``: the directory of the outputs it describes (``provenance.json``,
    ``oci``), default ``path``'s."""
    beside = beside or path.parent
    repo, offline, mirror, report = options.repo, options.offline, options.mirror, options.report
    log, progress = options.log, options.progress
    source = manifest.source
    if source.dirty:
        raise ManifestError(
            f"{path} records a build from a dirty work tree: no commit holds what was built",
            hint="build from a clean tree (commit first), then verify that manifest",
        )
    if not source.commit:
        raise ManifestError(f"{path} records no git commit", hint="build inside a git repository to make it verifiable")
    pins = [WheelPin(w.name, w.version, w.filename, w.sha256.removeprefix("sha256:"), w.size) for w in manifest.wheels]
    epoch = Epoch(manifest.epoch.seconds, manifest.epoch.source)  # the recorded epoch, passed to every step
    with (
        repository_for(path, source.commit, repo=repo, remote=source.remote, log=log) as found,
        checkout(found, source.commit, source.remote) as src,
    ):
        relative = project_path(manifest.project.path, path=path)
        project = resolve_inside(src, relative, path=path)
        config = load_config(project)
        warnings = drift_warnings(manifest, config.compression.describe())
        declared = config.targets.get(manifest.target)
        arch = manifest.outputs.platform.rsplit("/", 1)[-1]
        platform = arch if declared is not None and declared.multi_platform else None
        one = declared.for_arch(arch) if declared is not None and platform is not None else declared
        warnings += target_drift(manifest, target_record(one) if one is not None else {})
        for w in warnings:
            log(f"warning: {w}")
        log(f"rebuilding {manifest.target} of {config.project.name} at {source.commit[:12]}")
        with tempfile.TemporaryDirectory() as out_dir:
            result = build_image(
                config,
                manifest.target,
                out_dir=Path(out_dir),
                epoch=epoch,
                # Offline, the project wheel's build backend must come from uv's cache too.
                project_wheel=wheel_step(epoch=epoch, offline=offline),
                pins=pins,
                offline=offline,
                base_manifest=manifest.base.manifest_digest,
                use_cache=False,
                debian=functools.partial(
                    debian_base, offline=offline, mirror=mirror, use_cache=False, progress=progress
                ),
                log=log,
                progress=progress,
                platform=platform,
            )
            rebuilt = image_manifest(config, result)
            for w in bytecode_drift(manifest, rebuilt):
                log(f"warning: {w}")
                warnings.append(w)
            compared, divergences = compare_manifests(manifest, rebuilt)
            provenance = provenance_problem(beside, manifest)
            compared += int((beside / "provenance.json").is_file())
            if provenance is not None:
                divergences.append(provenance)
            original = _original(beside)
            if divergences and original is not None:
                names = [layer.holds for layer in manifest.outputs.layers]
                bases = sum(1 for n in names if n == "base")
                detailed = diff_images(original, result.image, layer_names=names, base_layers=bases)
                divergences = _merge(divergences, detailed)
            if report is not None:
                _write_report(report, original, result.image, manifest, rebuilt)
    return VerifyResult(compared, tuple(divergences), tuple(warnings), rebuilt, result.image)


def _original(beside: Path) -> Image | None:
    layout = beside / "oci"
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
    report: Path, original: Image | None, rebuilt: Image, recorded: Manifest, rebuilt_manifest: Manifest
) -> None:
    from reprobuild.fsutil import atomic_write_text, make_output_dir

    make_output_dir(report)
    shutil.rmtree(report / "rebuilt", ignore_errors=True)
    write_layout(report / "rebuilt", rebuilt)
    if original is not None:
        shutil.rmtree(report / "original", ignore_errors=True)
        write_layout(report / "original", original)
    atomic_write_text(report / "manifest.recorded.json", manifest_text(recorded))
    atomic_write_text(report / "manifest.rebuilt.json", manifest_text(rebuilt_manifest))
