"""``repro-build image``: assemble a target's OCI image from its lock, its base and the project wheel.

No Docker engine is needed (DESIGN.md principle 1): layers are written from verified wheel files by
the canonical tar writer, the base's blobs are carried as they are, and the result is written as an
OCI layout (``build/<target>/oci``) and one archive that is both an OCI layout and a ``docker load``
archive (``build/<target>/image.tar``). Outputs are staged beside ``build/<target>`` and swapped in
only when everything succeeded, so a failed build leaves the previous outputs untouched.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro_build import __version__
from repro_build.cache import cache_root
from repro_build.config import Config, Target
from repro_build.determinism.policy import Policy, image_files
from repro_build.epoch import Epoch, resolve_epoch
from repro_build.errors import StaleLockError
from repro_build.gitinfo import SourceInfo, source_info
from repro_build.image import imageconfig
from repro_build.image.base import DebianBuilder, ResolvedBase, resolve_base
from repro_build.image.baseinfo import BaseInfo, check_base, inspect_base
from repro_build.image.plan import LayerGroup, plan_layers
from repro_build.image.pyenv import Distribution, collect_distributions, install_wheels
from repro_build.image.wheels import WheelCache, WheelPin, select_wheels
from repro_build.lock import check_locks, target_lock_path
from repro_build.oci.archive import write_archive
from repro_build.oci.blobstore import BlobStore
from repro_build.oci.compress import Compressor
from repro_build.oci.image import Image, append_layers, with_config
from repro_build.oci.layer import Layer, write_layer
from repro_build.oci.layout import write_layout
from repro_build.oci.progress import NO_PROGRESS, Progress
from repro_build.oci.tarwriter import LayerEntry
from repro_build.oci.validate import validate_image

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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return str(self.image.digest)


def compressor_for(config: Config) -> Compressor:
    c = config.compression
    if c.algorithm == "gzip":
        return Compressor.gzip(level=c.level)
    if c.algorithm == "zstd":
        return Compressor.zstd(level=c.level)
    return Compressor.none()


def _group_entries(group: LayerGroup, dists: dict[str, Distribution]) -> list[LayerEntry]:
    entries: list[LayerEntry] = []
    for name in group.distributions:
        for f in dists[name].files:
            entries.append(LayerEntry.file(f.image_path, source=f.source, mode=0o755 if f.executable else 0o644))
    return entries


def _app_entries(policy: Policy, site_packages: str) -> list[LayerEntry]:
    return [LayerEntry.file(f"{site_packages}/{name}", data) for name, data in image_files(policy)]


def _labels(config: Config, target: Target, source: SourceInfo, base: ResolvedBase) -> dict[str, str]:
    labels = {
        imageconfig.TITLE: config.project.name,
        imageconfig.BASE_NAME: target.base.text,
        imageconfig.BASE_DIGEST: str(base.record.get("manifest_digest") or ""),
    }
    if config.project.version:
        labels[imageconfig.VERSION] = config.project.version
    if source.commit:
        labels[imageconfig.REVISION] = source.commit
    if source.remote:
        labels[imageconfig.SOURCE] = source.remote
    return {k: v for k, v in labels.items() if v}


def build_image(
    config: Config,
    target_name: str,
    *,
    out_dir: Path | None = None,
    wheel: Path | None = None,
    project_wheel: ProjectWheel | None = None,
    pins: list[WheelPin] | None = None,
    offline: bool = False,
    debian: DebianBuilder | None = None,
    progress: Progress = NO_PROGRESS,
    log: Callable[[str], None] = lambda s: None,
) -> ImageResult:
    """Assemble ``target_name``'s image into ``out_dir/<target>`` (default ``<project>/build``).

    ``wheel`` is the project wheel to install (else ``project_wheel`` builds it; else none is
    installed). ``pins`` replaces wheel selection (``verify`` passes the manifest's); with ``offline``
    every wheel must already be in the cache.
    """
    target = config.target(target_name)
    epoch = resolve_epoch(config.epoch_policy, config.root)
    lock = target_lock_path(config, target.name)
    problems = check_locks(config, only=[lock.name])
    if problems:
        raise StaleLockError(
            f"the lock of target {target.name!r} is missing or stale:\n" + "\n".join(f"  {p}" for p in problems),
            hint="run `repro-build lock` and commit `locks/`",
        )
    out_root = (out_dir or config.root / "build").resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    final = out_root / target.name
    source = source_info(config.root)
    policy = Policy(target.flags, cuda=target.accelerator == "cuda")
    compressor = compressor_for(config)
    cache = WheelCache()
    base_store = BlobStore(cache_root() / "blobs")
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=out_root) as tmp:
        work = Path(tmp)
        log(f"base: {target.base.text}")
        base = resolve_base(config, target, base_store, work / "base", debian=debian)
        info = inspect_base(base.image.layers, base.image.config, name=target.base.text)
        check_base(info, target, name=target.base.text)
        log(f"base Python {info.python_version} at {info.interpreter}, site-packages {info.site_packages}")

        if pins is None:
            if offline:
                raise StaleLockError("offline builds need the wheel list of a build manifest")
            selected = select_wheels(config.root, target, lock)
            wheel_files = [
                (pin, cache.fetch(pin, url, progress.task(f"wheel {pin.filename}", pin.size))) for pin, url in selected
            ]
        else:
            wheel_files = (
                list(zip(pins, cache.require(pins), strict=True))
                if offline
                else [(pin, cache.get(pin) or cache.require([pin])[0]) for pin in pins]
            )
        wheel_record: dict[str, Any] | None = None
        if wheel is None and project_wheel is not None:
            wheel, wheel_record = project_wheel(config, work / "dist")
        installs = list(wheel_files)
        project_pin: WheelPin | None = None
        if wheel is not None:
            from repro_build.oci.digest import sha256_file

            digest, size = sha256_file(wheel)
            project_pin = WheelPin(
                config.project.normalized_name, config.project.version or "", wheel.name, digest.hex, size
            )
            installs.append((project_pin, wheel))
            wheel_record = wheel_record or {"filename": wheel.name, "sha256": f"sha256:{digest.hex}", "size": size}
        staging = work / "site"
        log(f"installing {len(installs)} wheel(s)")
        install_wheels(installs, target, staging, what=f"installing the wheels of target {target.name!r}")
        by_name = {p.name: p for p, _ in installs}
        dists = {d.name: d for d in collect_distributions(staging, info.paths(), by_name)}
        groups = plan_layers(
            list(dists.values()), config.project.name if wheel else None, target.layers, len(base.image.layers)
        )

        store = BlobStore(work / "oci")
        layers: list[Layer] = []
        records = [
            LayerRecord(str(lyr.digest), str(lyr.diff_id), lyr.size, lyr.media_type, "base")
            for lyr in base.image.layers
        ]
        wheel_layers: list[tuple[WheelPin, int]] = []
        for group in groups:
            entries = _app_entries(policy, info.site_packages) if group.kind == "app" else _group_entries(group, dists)
            layer = write_layer(
                entries, epoch=epoch, compressor=compressor, store=store, progress=progress, description=group.name
            )
            layers.append(layer)
            index = len(records)
            records.append(
                LayerRecord(
                    str(layer.digest), str(layer.diff_id), layer.size, layer.media_type, group.name, group.distributions
                )
            )
            for name in group.distributions:
                pin = dists[name].wheel
                if pin is not None and pin is not project_pin:
                    wheel_layers.append((pin, index))
            log(f"layer {group.name}: {layer.size} bytes")

        labels = _labels(config, target, source, base)
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
        image = with_config(base.image, {**cfg, "history": history[: len(history) - len(groups)]})
        image = append_layers(image, *layers, history=history[len(history) - len(groups) :])
        from repro_build.oci.image import with_annotations

        image = with_annotations(image, labels)
        validate_image(image)

        staged = work / "out"
        layout = staged / "oci"
        write_layout(layout, image, tag=target.name, progress=progress)
        repo_tag = f"{config.project.normalized_name}:{target.name}"
        write_archive(staged / "image.tar", image, repo_tags=[repo_tag])
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)
    # The image's layers now live in the final layout.
    from repro_build.oci.layout import read_layout

    image = read_layout(final / "oci", tag=target.name)  # type: ignore[assignment]
    env = tuple(image.config.get("config", {}).get("Env", []))
    return ImageResult(
        target=target.name,
        image=image,
        layout=final / "oci",
        archive=final / "image.tar",
        repo_tag=repo_tag,
        epoch=epoch,
        base=base.record,
        base_info=info,
        wheels=tuple(sorted(wheel_layers, key=lambda w: w[0].name)),
        project_wheel=wheel_record,
        layers=tuple(records),
        compressor=compressor.describe(),
        env=env,
        policy=policy,
        source=source,
        extra={"repro-build": __version__},
    )
