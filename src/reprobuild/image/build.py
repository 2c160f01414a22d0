"""``repro-build image``: assemble a target's OCI image from its lock, its base and the project wheel.

No Docker engine is needed (images are assembled, never run): layers are written from verified wheel files by
the canonical tar writer, the base's blobs are carried as they are, and the result is written as an
OCI layout (``build/<target>/oci``) and one archive that is both an OCI layout and a ``docker load``
archive (``build/<target>/image.tar``). Outputs are staged beside ``build/<target>`` and swapped in
only when everything succeeded, so a failed build leaves the previous outputs untouched.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import sysconfig
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from reprobuild import __version__
from reprobuild.attest.inventory import BaseInventory, wheel_license
from reprobuild.attest.sbom import WheelFile
from reprobuild.cache import cache_root, prepare_cache_root
from reprobuild.config import Config, Target
from reprobuild.determinism.cudapolicy import with_cuda
from reprobuild.determinism.policy import HOOK_MODULE, Policy, image_files
from reprobuild.distribution import COMMAND
from reprobuild.epoch import ZIP_EPOCH_FLOOR, Epoch, resolve_epoch
from reprobuild.errors import ImageError, ReproBuildError, StaleLockError
from reprobuild.fsutil import (
    exclusive_lock,
    make_output_dir,
    publish_dir,
    remove_tree_in_background,
)
from reprobuild.gitinfo import SourceInfo, source_info
from reprobuild.image import imageconfig
from reprobuild.image.base import DebianBuilder, ResolvedBase, resolve_base
from reprobuild.image.baseinfo import BaseInfo, check_base
from reprobuild.image.buildcache import LayerCache, cached_base_info, layer_key
from reprobuild.image.bytecode import compile_distributions, compile_module
from reprobuild.image.cachesecret import fleet_secret
from reprobuild.image.datafiles import DataFile, data_files, file_records, with_file_groups
from reprobuild.image.debianbase import import_shared_base, share_base, shared_base_image
from reprobuild.image.depcache import DEPENDENCY_KINDS, DependencyCache, DependencyLayers, dependency_key
from reprobuild.image.interpreter import Interpreter, find_interpreter
from reprobuild.image.inventorycache import cached_base_inventory
from reprobuild.image.ocilabels import standard_labels
from reprobuild.image.outputs import Facts, StagedOutputs, attach_sboms
from reprobuild.image.plan import LayerGroup, plan_layers
from reprobuild.image.projectwheel import ProjectWheel
from reprobuild.image.pyenv import Distribution, collect_distributions, install_wheels
from reprobuild.image.registrycache import RegistryCache, cache_reference
from reprobuild.image.sourcelabel import SourceLabel, source_label
from reprobuild.image.stdlibbytecode import share_stdlib
from reprobuild.image.wheels import WheelCache, WheelPin, select_wheels
from reprobuild.image.wheelsources import RecordedWheel, obtain, recorded_wheels
from reprobuild.lock import check_locks
from reprobuild.lockdir import RELOCK_HINT
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.digest import sha256_file
from reprobuild.oci.image import Image, append_layers, with_annotations, with_config
from reprobuild.oci.layer import Layer, write_layer
from reprobuild.oci.layout import read_layout
from reprobuild.oci.mediatypes import oci_layer_type
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.validate import validate_image
from reprobuild.platforms import platform_dir

#: Threads beside the build's own for what runs while it works: the project wheel's build, reading the
#: base's package inventory, compressing the third-party layers. The output does not depend on the
#: count or on which finishes first (tests/image/test_scheduling.py).
BACKGROUND_WORKERS = 3


class BuildSettings(TypedDict, total=False):
    """The arguments of :func:`build_image` that are the same for every platform of a target: what
    :func:`reprobuild.image.multiplatform.build_index` passes on to each platform's build (mypy checks
    that each is one of :func:`build_image`'s, of its type)."""

    out_dir: Path | None
    epoch: Epoch | None
    wheel: Path | None
    project_wheel: ProjectWheel | None
    offline: bool
    use_cache: bool
    cache_ref: str | None
    debian: DebianBuilder | None
    progress: Progress
    log: Callable[[str], None]
    source: SourceInfo | None


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


def _group_entries(group: LayerGroup, dists: Mapping[str, Distribution]) -> list[LayerEntry]:
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
    lock = config.locks_dir / target.lock_name
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


def _installed(
    wheels: list[tuple[WheelPin, Path]],
    *,
    target: Target,
    info: BaseInfo,
    interpreter: Interpreter,
    staging: Path,
    clash_with: frozenset[str] = frozenset(),
    cached: bool,
    log: Callable[[str], None],
) -> dict[str, Distribution] | None:
    """``wheels`` installed into ``staging`` and compiled: the distributions to write layers from, by name.
    ``cached``: uv may take its sealed record of the interpreter (not in a build that reads no cache).

    ``None`` when one of their files is a path in ``clash_with`` (what the third-party layers hold, when
    only the project wheel is installed here): the caller then installs everything at once, as which
    copy of a shared path wins is the full install's to say.
    """
    install_wheels(
        wheels,
        target,
        staging,
        what=f"installing the wheels of target {target.name!r}",
        python=interpreter.path,
        interpreter_record=cached,
    )
    collected = collect_distributions(staging, info.paths(), {p.name: p for p, _ in wheels})
    clash = sorted(f.image_path for d in collected for f in d.files if f.image_path in clash_with)
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

    @staticmethod
    def joined(base: Image, *parts: _Layers) -> _Layers:
        """The base's layers, then ``parts`` in order (each written with its own ``first`` index)."""
        return _Layers(
            [layer for part in parts for layer in part.layers],
            [LayerRecord(str(b.digest), str(b.diff_id), b.size, b.media_type, "base") for b in base.layers]
            + [record for part in parts for record in part.records],
            [w for part in parts for w in part.wheel_layers],
        )


#: The mtime of every file in the third-party wheel layers and the hook layer: 1980-01-01, the earliest
#: date a wheel (ZIP) can hold. A constant, so these layers depend only on the wheels' content and the
#: in-image paths, not on the project's commit: a new commit re-pushes the project layer only. Jib and
#: Nix use fixed mtimes for the same reason. Clamped to the epoch, which stays the upper bound.
DEPENDENCY_MTIME = ZIP_EPOCH_FLOOR


def layer_mtime(group: LayerGroup, epoch: Epoch) -> int:
    """The project's epoch for the project layer; the fixed dependency mtime (clamped) for the others."""
    return epoch.seconds if group.kind == "project" else min(DEPENDENCY_MTIME, epoch.seconds)


@dataclass(frozen=True)
class _LayerWriter:
    """What writing (or finding) a group's layer needs besides the group and its distributions."""

    pins: Mapping[str, WheelPin]  # the third-party wheels, by name
    policy: Policy
    info: BaseInfo
    interpreter: Interpreter
    epoch: Epoch
    compressor: Compressor
    store: BlobStore
    progress: Progress
    log: Callable[[str], None]
    cache: LayerCache | None
    files: Sequence[DataFile] = ()
    #: The app layer's entries, being made meanwhile (they depend on none of the wheels: the hook, its
    #: doctor and policy, and the hook's pyc, which takes a compiler process); made here when absent.
    app: Future[list[LayerEntry]] | None = None
    #: Held around the layer cache when it shares layers through a registry: the third-party and the
    #: project's layers are written on two threads, and the registry cache's first failure (an
    #: unreachable registry) must turn it off for the rest of the build, not be met by both.
    remote_lock: threading.Lock = field(default_factory=threading.Lock)

    def _shared(self) -> contextlib.AbstractContextManager[object]:
        return (
            self.remote_lock if self.cache is not None and self.cache.remote is not None else contextlib.nullcontext()
        )

    def write(
        self,
        groups: Sequence[LayerGroup],
        dists: Mapping[str, Distribution],
        *,
        first: int,
        reuse: Mapping[LayerGroup, Layer] | None = None,
    ) -> _Layers:
        """Write (or find) each group's layer; a group in ``reuse`` takes that layer as it is
        (image/depcache.py). ``first``: the index of the first group's layer among the image's layers."""
        out = _Layers([], [], [])
        reuse = reuse or {}
        compressor = self.compressor
        for group in groups:
            if group in reuse:
                entries = []
            elif group.kind == "file":
                entries = [next(f.entry() for f in self.files if f.path == group.path)]
            elif group.kind == "app" and self.app is not None:
                entries = self.app.result()
            elif group.kind == "app":
                entries = _app_entries(self.policy, self.info, self.interpreter, self.store.root.parent / "app")
            else:
                entries = _group_entries(group, dists)
            mtime = layer_mtime(group, self.epoch)
            layer = reuse.get(group)
            cache = self.cache
            key = layer_key(entries, epoch=mtime, compressor=compressor.describe()) if cache and layer is None else ""
            if cache and layer is None:
                with self._shared():
                    layer = cache.get(
                        key, entries=entries, epoch=mtime, media_type=oci_layer_type(compressor.algorithm)
                    )
            reused = layer is not None
            if layer is None:
                layer = write_layer(
                    entries,
                    epoch=mtime,
                    compressor=compressor,
                    store=self.store,
                    progress=self.progress,
                    description=group.name,
                )
                if cache:
                    with self._shared():
                        cache.put(key, layer)
            index = first + len(out.records)
            out.layers.append(layer)
            out.records.append(
                LayerRecord(
                    str(layer.digest), str(layer.diff_id), layer.size, layer.media_type, group.name, group.distributions
                )
            )
            for name in group.distributions:
                pin = self.pins.get(name)
                if pin is not None:
                    out.wheel_layers.append((pin, index))
            self.log(f"layer {group.name}: {layer.size} bytes" + (" (reused: not compressed again)" if reused else ""))
        return out


#: What the project's wheel step gives: the wheel (or none), its pin, and the manifest's record of it.
OwnWheel = tuple[Path | None, WheelPin | None, dict[str, Any] | None]


def _own_wheel(config: Config, wheel: Path | None, project_wheel: ProjectWheel | None, dist: Path) -> OwnWheel:
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


def _base(
    config: Config,
    target: Target,
    work: Path,
    *,
    debian: DebianBuilder | None,
    offline: bool,
    manifest: str | None,
    remote: RegistryCache | None,
    progress: Progress,
) -> ResolvedBase:
    """:func:`resolve_base`; an embedded Debian base is first looked up in the registry cache ``remote``
    (image/debianbase.py), and shared there once built."""
    shared = remote is not None and target.base.kind == "debian"
    if shared and remote is not None:
        import_shared_base(remote, config, target)
        _stdlib(remote, config, target, fetch=True)
    base = resolve_base(
        config,
        target,
        BlobStore(cache_root()),
        work / "base",
        debian=debian,
        offline=offline,
        manifest_digest=manifest,
        progress=progress,
    )
    if shared and remote is not None:
        share_base(remote, config, target)
        _stdlib(remote, config, target, fetch=False)
    return base


def _stdlib(remote: RegistryCache, config: Config, target: Target, *, fetch: bool) -> None:
    """Take in or share the standard-library byte-code layer of the cached Debian base (image/stdlibbytecode.py)."""
    shared = shared_base_image(config, target) if target.bytecode != "none" else None
    if shared is not None:
        share_stdlib(remote, shared, name=target.base.text, fetch=fetch)


def _third_party(
    config: Config,
    target: Target,
    lock: Path,
    *,
    pins: list[WheelPin] | None,
    offline: bool,
    work: Path,
    progress: Progress,
) -> _Wheels:
    """The third-party wheels; their files are fetched only when a layer must be written from them (_layers)."""

    def fetch(wanted: list[WheelPin] | None) -> list[tuple[WheelPin, Path]]:
        return _locked_wheels(
            config, target, lock, pins=wanted, offline=offline, staging=work / "wheels", progress=progress
        )

    known = _lock_pins(config, target, lock, pins, offline=offline)
    if known is None:
        fetched = fetch(None)
        return _Wheels([p for p, _ in fetched], fetch, fetched)
    return _Wheels(known, fetch)


def _licenses(deps: _Wheels, reused: DependencyLayers | None) -> dict[str, str | None]:
    """The third-party wheels' licences by sha256: recorded by the reused entry, else read from the files
    (fetched here: without a record, the wheels are needed anyway)."""
    if reused is not None and reused.licenses is not None:
        return dict(reused.licenses)
    return {pin.sha256: wheel_license(path) for pin, path in deps.files()}


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


def _done(result: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(result)
    return future


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _fail_early(job: Future[Any]) -> None:
    """Raise the error of a background step that has already failed (e.g. the project wheel's build)."""
    if job.done():
        job.result()


def _base_lock(config: Config, base: ResolvedBase) -> Path | None:
    """The base lock the base was built from (it gives the SBOMs each package's ``.deb`` hash), if any."""
    lock = base.record.origin.get("lock")
    return config.root / lock if isinstance(lock, str) else None


def _layers(
    config: Config,
    target: Target,
    deps: _Wheels,
    own: Future[OwnWheel],
    *,
    has_project: bool,
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
    pool: ThreadPoolExecutor,
    outputs: StagedOutputs,
    progress: Progress,
    log: Callable[[str], None],
    on_final_layers: Callable[[Sequence[Layer]], None] | None = None,
) -> tuple[list[LayerGroup], _Layers, OwnWheel, dict[str, str | None]]:
    """The layer groups above the base, their layers, the project's wheel (``own``, being built), and the
    third-party wheels' licences by sha256 (for the SBOMs).

    Reused third-party layers (locally or from the registry cache ``remote``) need no wheel file when the
    entry records the wheels' licences: then no third-party wheel is fetched or installed.

    The third-party wheels (``deps``) are reused as a whole when their inputs are unchanged
    (image/depcache.py); else they are installed and compiled on their own while the project wheel
    builds, and their layers are compressed while the project wheel is installed. The project's files
    then go into the layers above them, unless one of them is a path a third-party layer holds too:
    then every wheel is installed at once (which copy wins is the full install's to say). The groups
    and bytes do not depend on this order: each group's tar is made from its own distributions' files.

    Before waiting for the project wheel, the layers known to be final (the base's, and the reused
    third-party layers above it) start being copied into the ``outputs``, and are handed to
    ``on_final_layers`` (``image --push`` starts sending them).
    """
    base_layers = len(base.layers) + len(files)  # each data file takes a layer of the budget
    deps_cache = DependencyCache(remote=remote) if layer_cache else None
    deps_key = (
        dependency_key(
            deps.pins,
            target=target,
            paths=info.paths(),
            interpreter=interpreter,
            policy=target.layers,
            base_layers=base_layers,
            has_project=has_project,
            compressor=compressor.describe(),
            media_type=oci_layer_type(compressor.algorithm),
            mtime=min(DEPENDENCY_MTIME, epoch.seconds),
        )
        if deps_cache
        else ""
    )
    reused = deps_cache.get(deps_key) if deps_cache else None
    licenses = _licenses(deps, reused)
    writer = _LayerWriter(
        pins={p.name: p for p in deps.pins},
        policy=policy,
        info=info,
        interpreter=interpreter,
        epoch=epoch,
        compressor=compressor,
        store=BlobStore(work / "oci"),
        progress=progress,
        log=log,
        cache=layer_cache,
        files=files,
        app=pool.submit(_app_entries, policy, info, interpreter, work / "app"),
    )
    first = len(base.layers)
    installed = functools.partial(
        _installed, target=target, info=info, interpreter=interpreter, cached=layer_cache is not None, log=log
    )
    dep_dists: dict[str, Distribution] = {}
    if reused is not None:
        log(f"third-party wheels: {len(deps.pins)} reused as layers from the cache")
        dep_groups = list(reused.groups)
        dep_paths = reused.paths
        dep_job = _done(writer.write(dep_groups, {}, first=first, reuse=reused.by_group()))
    else:
        log(f"installing {len(deps.pins)} wheel(s)")
        fresh = installed(deps.files(), staging=work / "deps")
        assert fresh is not None  # nothing to clash with
        dep_dists = fresh
        planned = plan_layers(list(dep_dists.values()), None, target.layers, base_layers, project_layer=has_project)
        dep_groups = [g for g in planned if g.kind in DEPENDENCY_KINDS]
        dep_paths = frozenset(f.image_path for d in dep_dists.values() for f in d.files)
        dep_job = pool.submit(writer.write, dep_groups, dep_dists, first=first)
    _final([*base.layers, *(dep_job.result().layers if reused is not None else ())], outputs, on_final_layers)
    built = own.result()
    wheel, project_pin, _record = built
    mine = [(project_pin, wheel)] if wheel is not None and project_pin is not None else []
    if mine:
        log("installing the project wheel")
    top_dists = installed(mine, staging=work / "site", clash_with=dep_paths)
    if top_dists is None:
        dep_job.result()  # finished (its blobs stay unused in the staging store) before the full install
        dists = installed([*deps.files(), *mine], staging=work / "full")
        assert dists is not None
        groups = with_file_groups(
            plan_layers(list(dists.values()), config.project.name if mine else None, target.layers, base_layers),
            files,
        )
        written = _Layers.joined(base, writer.write(groups, dists, first=first))
        all_dists = dists
    else:
        top = plan_layers(list(top_dists.values()), config.project.name if mine else None, target.layers, base_layers)
        groups = with_file_groups([*dep_groups, *top], files)
        upper = writer.write(groups[len(dep_groups) :], top_dists, first=first + len(dep_groups))
        written = _Layers.joined(base, dep_job.result(), upper)
        if reused is not None:
            return groups, written, built, licenses
        all_dists = dep_dists
    if deps_cache:
        dep_layers = [(g, layer) for g, layer in zip(groups, written.layers, strict=True) if g.kind in DEPENDENCY_KINDS]
        deps_cache.put(
            deps_key,
            [g for g, _ in dep_layers],
            [layer for _, layer in dep_layers],
            (f.image_path for g, _ in dep_layers for name in g.distributions for f in all_dists[name].files),
            licenses,
        )
    return groups, written, built, licenses


def _final(layers: Sequence[Layer], outputs: StagedOutputs, also: Callable[[Sequence[Layer]], None] | None) -> None:
    """The image's bottom ``layers`` are final: their copies into the outputs begin, and ``also`` has them."""
    outputs.begin(layers)
    if also is not None:
        also(layers)


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
    # The blobs are not read here: every one was hashed when it was taken from its cache or written, and
    # the layout and the archive hash each again while they copy it (a mismatch there fails the build).
    validate_image(image, check_diff_ids=False, check_blobs=False)
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
    platform: str | None = None,
    background_cleanup: bool = False,
    source: SourceInfo | None = None,
    on_final_layers: Callable[[Sequence[Layer]], None] | None = None,
) -> ImageResult:
    """Assemble ``target_name``'s image into ``out_dir/<target>`` (default ``<project>/build``).

    ``platform`` (an architecture, ``amd64``/``arm64``) builds that platform of a multi-platform target
    into ``out_dir/linux-<arch>`` (:mod:`reprobuild.image.multiplatform` puts them together).

    ``epoch`` is the source date (default: ``SOURCE_DATE_EPOCH``, else the project's policy; ``verify``
    passes the recorded one). ``wheel`` is the project wheel to install (else ``project_wheel`` builds
    it; else none is installed). ``pins`` replaces wheel selection (``verify`` passes the manifest's);
    with ``offline`` every wheel and the base must already be in the cache (``base_manifest``: the
    platform manifest digest a previous build recorded for a registry base). ``use_cache=False`` writes
    every layer anew (``verify`` rebuilds that way). ``cache_ref`` names a registry repository whose
    layers are shared (read, checked, written) beside the local layer cache (``image --cache REF``).
    ``source`` is what :func:`reprobuild.gitinfo.source_info` says of the project, when the caller has
    read it already (``image`` does while the project wheel's build starts). ``on_final_layers`` is
    called with the image's bottom layers once they are final, while the rest is built
    (:class:`reprobuild.oci.pushahead.BlobsAhead` sends them to the push's registry meanwhile).

    One build of a target runs at a time per output directory (an ``flock`` on ``.<target>.lock``,
    dropped by the kernel if the process dies); a second waits. Holding it, the leftovers of a killed
    build (``.<target>-*`` work directories) are removed before the build starts. The work directory
    and the previous outputs are removed before this returns, or with ``background_cleanup`` on threads
    the interpreter waits for at exit (the CLI's push or load runs meanwhile).
    """
    target = config.target(target_name)
    if platform is not None:
        target = target.for_arch(platform)
    elif target.multi_platform:
        raise ImageError(
            f"target {target.name!r} is built for {len(target.platforms)} platforms",
            hint="build it with reprobuild.image.multiplatform.build_index (`repro-build image` does)",
        )
    out_root = make_output_dir((out_dir or config.root / "build").resolve())
    with exclusive_lock(out_root / f".{target.name}.lock"):
        for leftover in out_root.glob(f".{target.name}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        epoch = epoch or resolve_epoch(config.epoch_policy, config.root)
        prepare_cache_root()
        final = out_root / (target.name if platform is None else platform_dir(target.arch))
        compressor = config.compression
        repo_tag = f"{config.project.normalized_name}:{target.name}"
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=out_root))
        # The project wheel builds (a backend in its own process) while the locks are checked, the source
        # is described, the base, the locked wheels and their layers are prepared; the base's package
        # inventory (for the SBOMs) is read meanwhile too.
        pool = _background_pool()
        try:
            own = pool.submit(_own_wheel, config, wheel, project_wheel, work / "dist")
            lock = _check_lock(config, target)
            source = source or source_info(config.root)
            label = source_label(config.project.urls, source.remote)
            log(_label_line(label))
            remote = _registry_cache(config, cache_ref, progress, log) if use_cache and cache_ref else None
            log(f"base: {target.base.text}")
            base = _base(
                config,
                target,
                work,
                debian=debian,
                offline=offline,
                manifest=base_manifest,
                remote=remote,
                progress=progress,
            )
            _fail_early(own)
            inventory = pool.submit(
                cached_base_inventory, base.image, _base_lock(config, base), use_cache=use_cache, remote=remote
            )
            # Base facts are keyed by the verified base manifest digest, which pins the layers' diff_ids too.
            info = cached_base_info(base.image, name=target.base.text, use_cache=use_cache, remote=remote)
            check_base(info, target, name=target.base.text)
            log(f"base Python {info.python_version} at {info.interpreter}, site-packages {info.site_packages}")
            interpreter = _bytecode_compiler(info, log)
            deps = _third_party(config, target, lock, pins=pins, offline=offline, work=work, progress=progress)
            _fail_early(own)
            policy = with_cuda(target.policy, deps.pins, base.image.config, log)
            files = data_files(config, target)
            with StagedOutputs(work / "out", progress=progress) as outputs:
                groups, written, (wheel, project_pin, wheel_record), licenses = _layers(
                    config,
                    target,
                    deps,
                    own,
                    has_project=wheel is not None or project_wheel is not None,
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
                    pool=pool,
                    outputs=outputs,
                    progress=progress,
                    log=log,
                    on_final_layers=on_final_layers,
                )
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
                if remote is not None:
                    log(remote.summary_line())
                image = outputs.finish(image, tag=target.name, repo_tag=repo_tag)
                attestations = attach_sboms(
                    config,
                    target,
                    image,
                    staged=outputs.staged,
                    facts=_facts(
                        base, inventory.result(), deps.pins, licenses=licenses, own=(wheel, project_pin), epoch=epoch
                    ),
                )
            log(f"SBOMs: {', '.join(a['file'] for a in attestations)}, attached to the layout")
            publish_dir(outputs.staged, final, remove_old=remove_tree_in_background if background_cleanup else _remove)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            (remove_tree_in_background if background_cleanup else _remove)(work)
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


def _background_pool() -> ThreadPoolExecutor:
    """The build's background threads, once ``sysconfig`` is filled: its first use is not thread-safe, and
    the threads' work reads it (uv's finder, wheel tags)."""
    sysconfig.get_config_vars()
    return ThreadPoolExecutor(max_workers=BACKGROUND_WORKERS, thread_name_prefix="image")


def _label_line(label: SourceLabel) -> str:
    return f"source label: {label.url} (from {label.origin})" if label.url else f"source label: none ({label.note})"


def _bytecode_compiler(info: BaseInfo, log: Callable[[str], None]) -> Interpreter:
    """The interpreter that compiles the image's byte-code: the base's Python version (a note when only
    another patch release of it is found)."""
    interpreter = find_interpreter(info.python_version)
    log(f"byte-code compiled by Python {interpreter.version} ({interpreter.cache_tag})")
    if interpreter.version != info.python_version:
        log(
            f"note: the image has Python {info.python_version}; a few .pyc files can differ from a build whose "
            f"compiler is that exact version (`uv python install {info.python_version}` gives it)"
        )
    return interpreter


def _facts(
    base: ResolvedBase,
    inventory: BaseInventory,
    pins: Sequence[WheelPin],
    *,
    licenses: Mapping[str, str | None],
    own: tuple[Path | None, WheelPin | None],
    epoch: Epoch,
) -> Facts:
    """What the SBOMs say besides the image: the base, its packages, every wheel with its licence
    (``own``: the project's wheel and its pin, when it has one)."""
    wheel, project_pin = own
    return Facts(
        base=base,
        inventory=inventory,
        wheels=[_wheel_file(pin, licenses.get(pin.sha256)) for pin in pins],
        project=_wheel_file(project_pin, wheel_license(wheel)) if wheel and project_pin else None,
        epoch=epoch,
    )


def _wheel_file(pin: WheelPin, license: str | None) -> WheelFile:
    """What the SBOMs say of a wheel: its pin and the licence its METADATA declares."""
    return WheelFile(pin.name, pin.version, pin.filename, pin.sha256, license)
