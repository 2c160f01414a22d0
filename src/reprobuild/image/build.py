"""``repro-build image``: assemble a target's OCI image from its lock, its base and the project wheel.

No Docker engine is needed (images are assembled, never run): layers are written from verified wheel files by
the canonical tar writer, the base's blobs are carried as they are, and the result is written as an
OCI layout (``build/<target>/oci``) and one archive that is both an OCI layout and a ``docker load``
archive (``build/<target>/image.tar``). Outputs are staged beside ``build/<target>`` and swapped in
only when everything succeeded, so a failed build leaves the previous outputs untouched.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprobuild import __version__
from reprobuild.attest.inventory import wheel_license
from reprobuild.attest.sbom import WheelFile
from reprobuild.cache import cache_root, prepare_cache_root
from reprobuild.config import Config, Target
from reprobuild.determinism.cudapolicy import with_cuda
from reprobuild.determinism.policy import HOOK_MODULE, Policy, image_files
from reprobuild.distribution import COMMAND
from reprobuild.epoch import ZIP_EPOCH_FLOOR, Epoch, resolve_epoch
from reprobuild.errors import ImageError, ReproBuildError, StaleLockError
from reprobuild.fsutil import atomic_write_bytes, exclusive_lock, make_output_dir, publish_dir
from reprobuild.gitinfo import SourceInfo, source_info
from reprobuild.image import imageconfig
from reprobuild.image.base import DebianBuilder, ResolvedBase, resolve_base
from reprobuild.image.baseinfo import BaseInfo, check_base
from reprobuild.image.buildcache import LayerCache, cached_base_info, layer_key
from reprobuild.image.bytecode import compile_distributions, compile_module
from reprobuild.image.cachesecret import fleet_secret
from reprobuild.image.datafiles import DataFile, data_files, file_records, with_file_groups
from reprobuild.image.debianbase import import_shared_base, share_base
from reprobuild.image.depcache import DEPENDENCY_KINDS, DependencyCache, DependencyLayers, dependency_key
from reprobuild.image.interpreter import Interpreter, find_interpreter
from reprobuild.image.ocilabels import standard_labels
from reprobuild.image.plan import LayerGroup, plan_layers
from reprobuild.image.pyenv import Distribution, collect_distributions, install_wheels
from reprobuild.image.registrycache import RegistryCache, cache_reference
from reprobuild.image.sourcelabel import SourceLabel, source_label
from reprobuild.image.wheels import WheelCache, WheelPin, select_wheels
from reprobuild.image.wheelsources import RecordedWheel, obtain, recorded_wheels
from reprobuild.lock import check_locks, target_lock_path
from reprobuild.lockdir import RELOCK_HINT
from reprobuild.oci.archive import write_archive
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.digest import sha256_file
from reprobuild.oci.image import Image, append_layers, with_annotations, with_config
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.layout import read_layout, write_layout
from reprobuild.oci.mediatypes import oci_layer_type
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.validate import validate_image

#: Builds or locates the project's wheel; returns (wheel path, the wheel step's record as a dict).
ProjectWheel = Callable[[Config, Path], tuple[Path, dict[str, Any]]]


@dataclass(frozen=True)
class LayerRecord:
    """One layer of the result and what it holds."""

    digest: str
    diff_id: str
    size: int
    media_type: str
    holds: str  # "base" or the group name
    distributions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "diff_id": self.diff_id,
            "digest": self.digest,
            "distributions": list(self.distributions),
            "holds": self.holds,
            "media_type": self.media_type,
            "size": self.size,
        }


@dataclass(frozen=True)
class ImageResult:
    """Everything ``image`` produced and what the build manifest needs to record about it."""

    target: str
    image: Image
    layout: Path
    archive: Path
    repo_tag: str
    epoch: Epoch
    base: dict[str, Any]
    base_info: BaseInfo
    wheels: tuple[tuple[WheelPin, int], ...]  # (wheel, index of its layer)
    project_wheel: dict[str, Any] | None
    layers: tuple[LayerRecord, ...]
    compressor: dict[str, Any]
    env: tuple[str, ...]
    policy: Policy
    source: SourceInfo
    source_label: SourceLabel
    bytecode: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    files: tuple[dict[str, Any], ...] = ()  # the data-file layers (image/datafiles.py)
    #: The SBOMs written beside the image and attached to it (reprobuild.attest.sbom.attestation_record).
    attestations: tuple[dict[str, Any], ...] = ()

    @property
    def digest(self) -> str:
        return str(self.image.digest)


def _group_entries(group: LayerGroup, dists: dict[str, Distribution]) -> list[LayerEntry]:
    entries: list[LayerEntry] = []
    for name in group.distributions:
        for f in dists[name].files:
            entries.append(LayerEntry.file(f.image_path, source=f.source, mode=0o755 if f.executable else 0o644))
    return entries


def app_files(policy: Policy, site_packages: str, interpreter: Interpreter, scratch: Path) -> list[tuple[str, bytes]]:
    """The hook layer's files: the hook, doctor and policy, plus the hook's own pyc.

    The hook module runs at every interpreter start of an image whose policy covers a framework, so it
    always ships compiled (``unchecked-hash``, for its in-image path, by ``interpreter``, one of the
    image's ``X.Y``) whatever ``bytecode`` says: from source, without a writable cache, it would be
    compiled anew at every start.
    """
    files = [(f"{site_packages}/{name}", data) for name, data in image_files(policy)]
    hook = next((path, data) for path, data in files if path.endswith(f"/{HOOK_MODULE}.py"))
    source = scratch / f"{HOOK_MODULE}.py"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(hook[1])
    compiled = compile_module(source, hook[0], interpreter)
    if compiled is None:
        raise ImageError(f"the determinism hook does not compile with Python {interpreter.version}")
    files.append((compiled[0], compiled[1].read_bytes()))
    return sorted(files)


def _app_entries(policy: Policy, info: BaseInfo, interpreter: Interpreter, scratch: Path) -> list[LayerEntry]:
    return [LayerEntry.file(path, data) for path, data in app_files(policy, info.site_packages, interpreter, scratch)]


def _labels(
    config: Config, target: Target, source: SourceInfo, label: SourceLabel, base: ResolvedBase, *, epoch: Epoch
) -> dict[str, str]:
    return standard_labels(
        config,
        target,
        created=imageconfig.rfc3339(epoch.seconds),
        revision=source.commit,
        source=label.url,
        base_digest=base.record.manifest_digest,
    )


def _check_lock(config: Config, target: Target) -> Path:
    lock = target_lock_path(config, target.name)
    problems = check_locks(config, only=[lock.name])
    if problems:
        raise StaleLockError(
            f"the lock of target {target.name!r} is missing or stale:\n" + "\n".join(f"  {p}" for p in problems),
            hint=RELOCK_HINT,
        )
    return lock


def _locked_wheels(
    config: Config,
    target: Target,
    lock: Path,
    *,
    pins: list[WheelPin] | None,
    offline: bool,
    staging: Path,
    progress: Progress,
) -> list[tuple[WheelPin, Path]]:
    """Verified wheel files for the target: the files ``lock`` recorded, or exactly ``pins`` (a manifest's),
    each linked into ``staging`` under its file name (:class:`~reprobuild.image.wheels.WheelCache`).

    Each comes from the cache by sha256, else from where ``lock`` found it, else from the local
    ``UV_FIND_LINKS`` directories (:mod:`reprobuild.image.wheelsources`); what is still missing is
    selected by uv with this machine's index configuration and must be the very file pinned.
    Without a record (a lock made before sources were recorded) uv selects every file.
    """
    cache = WheelCache(staging=staging)

    def fetch(pin: WheelPin, url: str) -> Path:
        return cache.fetch(pin, url, progress)

    recorded = recorded_wheels(config, target, lock)
    if pins is None:
        if recorded is None:
            if offline:
                raise ImageError(
                    f"an offline build needs the wheel list of a build manifest, or a lock that records its "
                    f"wheels ({lock.name} was made by an older repro-build)",
                    hint="use `repro-build verify MANIFEST --offline`, or run `repro-build lock` again",
                )
            return [(pin, fetch(pin, url)) for pin, url in select_wheels(config.root, target, lock)]
        pins = [w.pin for w in recorded]
    if offline:
        return list(zip(pins, cache.require(pins), strict=True))
    sources = {w.pin.sha256: w for w in recorded or []}
    found: dict[str, Path] = {}
    tried: dict[str, list[str]] = {pin.sha256: [] for pin in pins}
    for pin in pins:
        wheel = sources.get(pin.sha256) or RecordedWheel(pin, {})
        path = obtain(wheel, cache, config.root, fetch, tried[pin.sha256])
        if path is not None:
            found[pin.sha256] = path
    missing = [pin for pin in pins if pin.sha256 not in found]
    if missing:
        try:
            urls = {pin.sha256: url for pin, url in select_wheels(config.root, target, lock)}
        except ReproBuildError as e:
            urls = {}
            for pin in missing:
                tried[pin.sha256].append(f"uv's selection with this machine's configuration: {e.message}")
        for pin in missing:
            if pin.sha256 in urls:
                found[pin.sha256] = fetch(pin, urls[pin.sha256])
            elif urls:
                tried[pin.sha256].append(
                    f"uv's selection with this machine's configuration: not offered for {lock.name}"
                )
    still = [pin for pin in pins if pin.sha256 not in found]
    if still:
        lines = "\n".join(
            f"  {pin.filename} (sha256 {pin.sha256}); looked in:\n" + "\n".join(f"    {t}" for t in tried[pin.sha256])
            for pin in still
        )
        raise ImageError(
            f"{len(still)} wheel(s) of {lock.name} could not be found:\n{lines}",
            hint="add the directory that holds them to UV_FIND_LINKS, or configure the index they came from",
        )
    return [(pin, found[pin.sha256]) for pin in pins]


def _project_pin(config: Config, wheel: Path) -> WheelPin:
    digest, size = sha256_file(wheel)
    return WheelPin(config.project.normalized_name, config.project.version or "", wheel.name, digest.hex, size)


def _distributions(
    installs: list[tuple[WheelPin, Path]],
    project_pin: WheelPin | None,
    reused: DependencyLayers | None,
    *,
    target: Target,
    info: BaseInfo,
    interpreter: Interpreter,
    staging: Path,
    log: Callable[[str], None],
) -> dict[str, Distribution] | None:
    """The installed distributions to write layers from, by name; with ``reused`` only the project's.

    With ``reused`` (the third-party layers, found by their inputs) only the project wheel is installed
    and compiled; ``None`` when one of its files is a file a dependency's layer holds too (the caller
    then installs everything, as which copy wins is the full install's to say).
    """
    wanted = installs if reused is None else [(p, w) for p, w in installs if p == project_pin]
    if reused is None:
        log(f"installing {len(installs)} wheel(s)")
    else:
        count = sum(len(group.distributions) for group in reused.groups)
        log(f"installing {len(wanted)} wheel(s); {count} reused as layers from the cache")
    install_wheels(wanted, target, staging, what=f"installing the wheels of target {target.name!r}")
    collected = collect_distributions(staging, info.paths(), {p.name: p for p, _ in wanted})
    if reused is not None:
        clash = sorted(f.image_path for d in collected for f in d.files if f.image_path in reused.paths)
        if clash:
            log(f"the project wheel holds {clash[0]}, which a dependency holds too: installing every wheel")
            return None
    if target.bytecode == "unchecked-hash":
        collected = compile_distributions(collected, interpreter=interpreter, site_packages=info.site_packages)
    return {d.name: d for d in collected}


@dataclass(frozen=True)
class _Layers:
    layers: list[Layer]
    records: list[LayerRecord]
    wheel_layers: list[tuple[WheelPin, int]]


#: The mtime of every file in the third-party wheel layers and the hook layer: 1980-01-01, the earliest
#: date a wheel (ZIP) can hold. A constant, so these layers depend only on the wheels' content and the
#: in-image paths, not on the project's commit: a new commit re-pushes the project layer only. Jib and
#: Nix use fixed mtimes for the same reason. Clamped to the epoch, which stays the upper bound.
DEPENDENCY_MTIME = ZIP_EPOCH_FLOOR


def layer_mtime(group: LayerGroup, epoch: Epoch) -> int:
    """The project's epoch for the project layer; the fixed dependency mtime (clamped) for the others."""
    return epoch.seconds if group.kind == "project" else min(DEPENDENCY_MTIME, epoch.seconds)


def _write_layers(
    groups: list[LayerGroup],
    dists: dict[str, Distribution],
    *,
    pins: Mapping[str, WheelPin],
    base: Image,
    policy: Policy,
    info: BaseInfo,
    interpreter: Interpreter,
    epoch: Epoch,
    compressor: Compressor,
    store: BlobStore,
    project_pin: WheelPin | None,
    progress: Progress,
    log: Callable[[str], None],
    cache: LayerCache | None,
    files: Sequence[DataFile] = (),
    reuse: Mapping[LayerGroup, Layer] | None = None,
) -> _Layers:
    """Write (or find) each group's layer; a group in ``reuse`` takes that layer as it is (image/depcache.py)."""
    out = _Layers(
        [], [LayerRecord(str(b.digest), str(b.diff_id), b.size, b.media_type, "base") for b in base.layers], []
    )
    reuse = reuse or {}
    for group in groups:
        if group in reuse:
            entries = []
        elif group.kind == "file":
            entries = [next(f.entry() for f in files if f.path == group.path)]
        elif group.kind == "app":
            entries = _app_entries(policy, info, interpreter, store.root.parent / "app")
        else:
            entries = _group_entries(group, dists)
        mtime = layer_mtime(group, epoch)
        layer = reuse.get(group)
        key = layer_key(entries, epoch=mtime, compressor=compressor.describe()) if cache and layer is None else ""
        if cache and layer is None:
            layer = cache.get(key, entries=entries, epoch=mtime, media_type=oci_layer_type(compressor.algorithm))
        reused = layer is not None
        if layer is None:
            layer = write_layer(
                entries, epoch=mtime, compressor=compressor, store=store, progress=progress, description=group.name
            )
            if cache:
                cache.put(key, layer)
        index = len(out.records)
        out.layers.append(layer)
        out.records.append(
            LayerRecord(
                str(layer.digest), str(layer.diff_id), layer.size, layer.media_type, group.name, group.distributions
            )
        )
        for name in group.distributions:
            pin = pins.get(name)
            if pin is not None and pin != project_pin:
                out.wheel_layers.append((pin, index))
        log(f"layer {group.name}: {layer.size} bytes" + (" (reused: not compressed again)" if reused else ""))
    return out


def _own_wheel(
    config: Config, wheel: Path | None, project_wheel: ProjectWheel | None, dist: Path
) -> tuple[Path | None, WheelPin | None, dict[str, Any] | None]:
    """The project's wheel (``wheel`` as given, else built by ``project_wheel``; else none), its pin, and
    what the manifest records about it: the wheel step's record, or the given file's name, hash and size."""
    if wheel is None and project_wheel is not None:
        built, record = project_wheel(config, dist)
        return built, _project_pin(config, built), record
    if wheel is None:
        return None, None, None
    pin = _project_pin(config, wheel)
    return wheel, pin, {"filename": wheel.name, "sha256": f"sha256:{pin.sha256}", "size": pin.size}


def _registry_cache(config: Config, cache_ref: str, progress: Progress, log: Callable[[str], None]) -> RegistryCache:
    """The registry cache ``cache_ref`` in the mode the fleet secret allows (image/registrycache.py)."""
    secret = fleet_secret(config.root, config.cache_secret_file)
    remote = RegistryCache(cache_reference(cache_ref), secret=secret, progress=progress)
    log(remote.mode_line())
    return remote


def _lock_pins(
    config: Config, target: Target, lock: Path, pins: list[WheelPin] | None, *, offline: bool
) -> list[WheelPin] | None:
    """The third-party wheels, known without fetching a file: ``pins`` as given, else what ``lock``
    records, else (a lock made before sources were recorded) uv's selection; ``None`` offline without
    a record (:func:`_locked_wheels` says why that cannot work)."""
    if pins is not None:
        return list(pins)
    recorded = recorded_wheels(config, target, lock)
    if recorded is not None:
        return [w.pin for w in recorded]
    return None if offline else [pin for pin, _ in select_wheels(config.root, target, lock)]


@dataclass
class _Wheels:
    """The third-party wheels: their pins, and their files once :meth:`files` fetched them (only when a
    layer must be written from them, or their licences are not recorded)."""

    pins: list[WheelPin]
    fetch: Callable[[list[WheelPin] | None], list[tuple[WheelPin, Path]]]
    fetched: list[tuple[WheelPin, Path]] | None = None

    def files(self) -> list[tuple[WheelPin, Path]]:
        if self.fetched is None:
            self.fetched = self.fetch(self.pins)
        return self.fetched


def _layers(
    config: Config,
    target: Target,
    wheels: _Wheels,
    project: tuple[WheelPin, Path] | None,
    *,
    base: Image,
    info: BaseInfo,
    interpreter: Interpreter,
    policy: Policy,
    epoch: Epoch,
    compressor: Compressor,
    files: Sequence[DataFile],
    work: Path,
    layer_cache: LayerCache | None,
    remote: RegistryCache | None,
    progress: Progress,
    log: Callable[[str], None],
) -> tuple[list[LayerGroup], _Layers, dict[str, str | None]]:
    """The layer groups above the base, their layers, and the third-party wheels' licences (by sha256).

    The third-party layers are reused as a whole when their inputs are unchanged (image/depcache.py,
    locally or from the registry cache), without fetching or installing a wheel when the entry records
    the wheels' licences; else the wheels are fetched, installed and written (or found layer by layer).
    """
    base_layers = len(base.layers) + len(files)  # each data file takes a layer of the budget
    project_pin = project[0] if project else None
    deps_cache = DependencyCache(remote=remote) if layer_cache else None
    deps_key = (
        dependency_key(
            wheels.pins,
            target=target,
            paths=info.paths(),
            interpreter=interpreter,
            policy=target.layers,
            base_layers=base_layers,
            has_project=project_pin is not None,
            compressor=compressor.describe(),
            media_type=oci_layer_type(compressor.algorithm),
            mtime=min(DEPENDENCY_MTIME, epoch.seconds),
        )
        if deps_cache
        else ""
    )
    reused = deps_cache.get(deps_key) if deps_cache else None
    if reused is None or reused.licenses is None:
        wheels.files()

    def installs() -> list[tuple[WheelPin, Path]]:
        return [*(wheels.fetched or []), *([project] if project else [])]

    dists = _distributions(
        installs(),
        project_pin,
        reused,
        target=target,
        info=info,
        interpreter=interpreter,
        staging=work / "site",
        log=log,
    )
    if reused is not None and dists is None:
        reused = None  # the project's files overlap a dependency's: only the full install says which wins
        wheels.files()
        dists = _distributions(
            installs(),
            project_pin,
            None,
            target=target,
            info=info,
            interpreter=interpreter,
            staging=work / "full",
            log=log,
        )
    assert dists is not None
    groups = with_file_groups(
        [
            *(reused.groups if reused else ()),
            *plan_layers(
                list(dists.values()), config.project.name if project_pin else None, target.layers, base_layers
            ),
        ],
        files,
    )
    pins = {p.name: p for p in [*wheels.pins, *([project_pin] if project_pin else [])]}
    written = _write_layers(
        groups,
        dists,
        pins=pins,
        reuse=reused.by_group() if reused else None,
        base=base,
        policy=policy,
        info=info,
        interpreter=interpreter,
        epoch=epoch,
        compressor=compressor,
        store=BlobStore(work / "oci"),
        project_pin=project_pin,
        progress=progress,
        log=log,
        cache=layer_cache,
        files=files,
    )
    if reused is not None and reused.licenses is not None:
        licenses = dict(reused.licenses)
    else:
        licenses = {pin.sha256: wheel_license(path) for pin, path in wheels.files()}
    if deps_cache and reused is None:
        deps = [(g, layer) for g, layer in zip(groups, written.layers, strict=True) if g.kind in DEPENDENCY_KINDS]
        deps_cache.put(
            deps_key,
            [g for g, _ in deps],
            [layer for _, layer in deps],
            (f.image_path for g, _ in deps for name in g.distributions for f in dists[name].files),
            licenses,
        )
    return groups, written, licenses


def _assemble(
    base: ResolvedBase,
    written: _Layers,
    groups: list[LayerGroup],
    *,
    config: Config,
    target: Target,
    policy: Policy,
    epoch: Epoch,
    source: SourceInfo,
    label: SourceLabel,
) -> Image:
    labels = _labels(config, target, source, label, base, epoch=epoch)
    cfg = imageconfig.build_config(
        base.image.config,
        config=config,
        target=target,
        policy=policy,
        epoch=epoch.seconds,
        labels=labels,
        history=[g.name for g in groups],
    )
    history = cfg.pop("history")
    split = len(history) - len(groups)
    image = with_config(base.image, {**cfg, "history": history[:split]})
    image = append_layers(image, *written.layers, history=history[split:])
    image = with_annotations(image, labels)
    # Our layers' diff_ids were computed as they were written; the base's were checked by inspect_base.
    validate_image(image, check_diff_ids=False)
    return image


def build_image(
    config: Config,
    target_name: str,
    *,
    out_dir: Path | None = None,
    epoch: Epoch | None = None,
    wheel: Path | None = None,
    project_wheel: ProjectWheel | None = None,
    pins: list[WheelPin] | None = None,
    offline: bool = False,
    base_manifest: str | None = None,
    use_cache: bool = True,
    cache_ref: str | None = None,
    debian: DebianBuilder | None = None,
    progress: Progress = NO_PROGRESS,
    log: Callable[[str], None] = lambda s: None,
) -> ImageResult:
    """Assemble ``target_name``'s image into ``out_dir/<target>`` (default ``<project>/build``).

    ``epoch`` is the source date (default: ``SOURCE_DATE_EPOCH``, else the project's policy; ``verify``
    passes the recorded one). ``wheel`` is the project wheel to install (else ``project_wheel`` builds
    it; else none is installed). ``pins`` replaces wheel selection (``verify`` passes the manifest's);
    with ``offline`` every wheel and the base must already be in the cache (``base_manifest``: the
    platform manifest digest a previous build recorded for a registry base). ``use_cache=False`` writes
    every layer anew (``verify`` rebuilds that way). ``cache_ref`` names a registry repository whose
    layers are shared (read, checked, written) beside the local layer cache (``image --cache REF``).

    One build of a target runs at a time per output directory (an ``flock`` on ``.<target>.lock``,
    dropped by the kernel if the process dies); a second waits. Holding it, the leftovers of a killed
    build (``.<target>-*`` work directories) are removed before the build starts.
    """
    target = config.target(target_name)
    out_root = make_output_dir((out_dir or config.root / "build").resolve())
    with exclusive_lock(out_root / f".{target.name}.lock"):
        for leftover in out_root.glob(f".{target.name}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        epoch = epoch or resolve_epoch(config.epoch_policy, config.root)
        lock = _check_lock(config, target)
        prepare_cache_root()
        final = out_root / target.name
        source = source_info(config.root)
        label = source_label(config.project.urls, source.remote)
        log(f"source label: {label.url} (from {label.origin})" if label.url else f"source label: none ({label.note})")
        compressor = config.compression
        repo_tag = f"{config.project.normalized_name}:{target.name}"
        remote = _registry_cache(config, cache_ref, progress, log) if use_cache and cache_ref else None
        with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=out_root) as tmp:
            work = Path(tmp)
            log(f"base: {target.base.text}")
            if remote is not None and target.base.kind == "debian":
                import_shared_base(remote, config, target)
            base = resolve_base(
                config,
                target,
                BlobStore(cache_root()),
                work / "base",
                debian=debian,
                offline=offline,
                manifest_digest=base_manifest,
                progress=progress,
            )
            if remote is not None and target.base.kind == "debian":
                share_base(remote, config, target, base.image)
            # Base facts are keyed by the verified base manifest digest, which pins the layers' diff_ids too.
            info = cached_base_info(base.image, name=target.base.text, use_cache=use_cache, remote=remote)
            check_base(info, target, name=target.base.text)
            log(f"base Python {info.python_version} at {info.interpreter}, site-packages {info.site_packages}")
            interpreter = find_interpreter(info.python_version)
            log(f"byte-code compiled by Python {interpreter.version} ({interpreter.cache_tag})")
            if interpreter.version != info.python_version:
                log(
                    f"note: the image has Python {info.python_version}; a few .pyc files can differ from a build whose "
                    f"compiler is that exact version (`uv python install {info.python_version}` gives it)"
                )

            def fetch(wanted: list[WheelPin] | None) -> list[tuple[WheelPin, Path]]:
                return _locked_wheels(
                    config, target, lock, pins=wanted, offline=offline, staging=work / "wheels", progress=progress
                )

            # The wheels' files are fetched only if a layer must be written from them (see _layers).
            known = _lock_pins(config, target, lock, pins, offline=offline)
            if known is None:
                fetched = fetch(None)
                wheels = _Wheels([p for p, _ in fetched], fetch, fetched)
            else:
                wheels = _Wheels(known, fetch)
            policy = with_cuda(target.policy, wheels.pins, base.image.config, log)
            wheel, project_pin, wheel_record = _own_wheel(config, wheel, project_wheel, work / "dist")
            project = (project_pin, wheel) if wheel is not None and project_pin is not None else None
            files = data_files(config, target)
            groups, written, licenses = _layers(
                config,
                target,
                wheels,
                project,
                base=base.image,
                info=info,
                interpreter=interpreter,
                policy=policy,
                epoch=epoch,
                compressor=compressor,
                files=files,
                work=work,
                layer_cache=LayerCache(remote=remote) if use_cache else None,
                remote=remote,
                progress=progress,
                log=log,
            )
            if remote is not None:
                log(remote.summary_line())
            image = _assemble(
                base,
                written,
                groups,
                config=config,
                target=target,
                policy=policy,
                epoch=epoch,
                source=source,
                label=label,
            )
            staged = work / "out"
            attestations = _write_outputs(
                config,
                target,
                image,
                staged=staged,
                repo_tag=repo_tag,
                progress=progress,
                log=log,
                base=base,
                wheels=[_wheel_file(pin, licenses.get(pin.sha256)) for pin in wheels.pins],
                project=_wheel_file(project[0], wheel_license(project[1])) if project else None,
                epoch=epoch,
                use_cache=use_cache,
                remote=remote,
            )
            publish_dir(staged, final)
        # The new layers lived in the staging store; from now on the image reads them from the final layout.
        result_image = read_layout(final / "oci", tag=target.name)
        assert isinstance(result_image, Image)
        return ImageResult(
            target=target.name,
            image=result_image,
            layout=final / "oci",
            archive=final / "image.tar",
            repo_tag=repo_tag,
            epoch=epoch,
            base=base.record.to_dict(),
            base_info=info,
            wheels=tuple(sorted(written.wheel_layers, key=lambda w: w[0].name)),
            project_wheel=wheel_record,
            layers=tuple(written.records),
            compressor=compressor.describe(),
            env=tuple(result_image.config.get("config", {}).get("Env", [])),
            policy=policy,
            source=source,
            bytecode={"mode": target.bytecode, "compiler": interpreter.to_dict()},
            source_label=label,
            extra={COMMAND: __version__},
            files=tuple(file_records(files, [r.holds for r in written.records])),
            attestations=attestations,
        )


def _wheel_file(pin: WheelPin, license: str | None) -> WheelFile:
    """What the SBOMs say of a wheel: its pin and the licence its METADATA declares."""
    return WheelFile(pin.name, pin.version, pin.filename, pin.sha256, license)


def _write_outputs(
    config: Config,
    target: Target,
    image: Image,
    *,
    staged: Path,
    repo_tag: str,
    progress: Progress,
    log: Callable[[str], None],
    base: ResolvedBase,
    wheels: Sequence[WheelFile],
    project: WheelFile | None,
    epoch: Epoch,
    use_cache: bool,
    remote: RegistryCache | None,
) -> tuple[dict[str, Any], ...]:
    """Write the OCI layout, the archive and the SBOMs (attached to the layout) into ``staged``."""
    write_layout(staged / "oci", image, tag=target.name, progress=progress)
    write_archive(staged / "image.tar", image, repo_tags=[repo_tag])
    attestations = _attach_sboms(
        config,
        target,
        image,
        base=base,
        wheels=wheels,
        project=project,
        epoch=epoch,
        staged=staged,
        use_cache=use_cache,
        remote=remote,
    )
    log(f"SBOMs: {', '.join(a['file'] for a in attestations)}, attached to the layout")
    return attestations


def _attach_sboms(
    config: Config,
    target: Target,
    image: Image,
    *,
    base: ResolvedBase,
    wheels: Sequence[WheelFile],
    project: WheelFile | None,
    epoch: Epoch,
    staged: Path,
    use_cache: bool,
    remote: RegistryCache | None,
) -> tuple[dict[str, Any], ...]:
    """Write the SPDX and CycloneDX SBOMs of ``image`` into ``staged`` and attach them to its layout.

    The base's inventory is read from its layers, or (``use_cache``) taken from the cache
    (image/inventorycache.py)."""
    from reprobuild.attest.inventory import read_lock
    from reprobuild.attest.referrers import artifact, attach_to_layout
    from reprobuild.attest.sbom import attestation_record, make_bom, sbom_documents
    from reprobuild.image.inventorycache import cached_base_inventory

    lock = base.record.origin.get("lock")
    lock_path = config.root / str(lock) if isinstance(lock, str) else None
    inventory = None
    if use_cache:
        try:
            lock_bytes = lock_path.read_bytes() if lock_path is not None else None
        except OSError:
            lock_bytes = None
        lock_data = read_lock(lock_path) if lock_path is not None and lock_bytes is not None else None
        inventory = cached_base_inventory(base.image, lock=lock_data, lock_bytes=lock_bytes, remote=remote)
    bom = make_bom(
        image=image,
        project_name=config.project.normalized_name,
        project_version=config.project.version,
        project_license=config.project.license,
        target=target.name,
        platform=target.platform,
        created=imageconfig.rfc3339(epoch.seconds),
        tool_version=__version__,
        base=base.image,
        base_reference=target.base.text,
        base_digest=base.record.manifest_digest,
        base_lock=lock_path,
        wheels=wheels,
        project_wheel=project,
        inventory=inventory,
    )
    records, artifacts = [], []
    created = imageconfig.rfc3339(epoch.seconds)
    for document in sbom_documents(bom):
        path = staged / document.name
        atomic_write_bytes(path, document.data)
        attached = artifact(image.descriptor, document, path, created=created)
        artifacts.append(attached)
        records.append(attestation_record(document, attached))
    attach_to_layout(staged / "oci", artifacts)
    return tuple(records)
