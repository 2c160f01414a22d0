"""Images: manifest bytes + config bytes + layers (OCI image-spec ``manifest.md``, ``config.md``).

An :class:`Image` keeps the exact manifest and config bytes it was read with, so copying never changes
a digest. Everything derivable is derived here and only here: the manifest of a new image is built by
:func:`_build` from the config and the layers (``rootfs.diff_ids`` from the layers, descriptors from the
blobs), in canonical JSON (sorted keys, compact). Mutations (:func:`append_layers`, :func:`with_config`)
return new images and always write OCI media types.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from reprobuild.errors import OCIError
from reprobuild.fsutil import canonical_json_bytes
from reprobuild.oci.digest import Digest
from reprobuild.oci.layer import Layer
from reprobuild.oci.mediatypes import (
    CONFIG_TYPES,
    DOCKER_MANIFEST,
    MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_MANIFEST,
    is_layer,
)
from reprobuild.oci.values import Descriptor, Platform


def parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object, raising :class:`OCIError` naming ``what``."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise OCIError(f"{what} is not valid JSON: {e}") from e
    if not isinstance(obj, dict):
        raise OCIError(f"{what} is not a JSON object")
    return obj


@dataclass(frozen=True)
class Image:
    """A single-platform image. Construction checks that manifest, config and layers agree.

    Checks done here are structural (JSON shape, config digest, layer descriptors and diff_ids as
    declared); blob contents are checked when they are copied and by :mod:`reprobuild.oci.validate`.
    """

    manifest_bytes: bytes
    config_bytes: bytes
    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        what = f"image manifest {self.digest}"
        m = self._manifest
        if m.get("schemaVersion") != 2:
            raise OCIError(f"{what}: schemaVersion is {m.get('schemaVersion')!r}, expected 2")
        if self.media_type not in MANIFEST_TYPES:
            raise OCIError(f"{what}: media type {self.media_type!r} is not an image manifest type")
        cfg = self.config_descriptor
        if cfg.media_type not in CONFIG_TYPES:
            raise OCIError(f"{what}: config media type {cfg.media_type!r} is not an image config type")
        if Digest.of_bytes(self.config_bytes) != cfg.digest or len(self.config_bytes) != cfg.size:
            raise OCIError(f"{what}: config bytes do not match the config descriptor {cfg.digest}")
        declared = self.layer_descriptors
        if len(declared) != len(self.layers):
            raise OCIError(f"{what}: lists {len(declared)} layers but {len(self.layers)} were given")
        for i, (d, layer) in enumerate(zip(declared, self.layers, strict=True)):
            if (d.digest, d.size, d.media_type) != (layer.digest, layer.size, layer.media_type):
                raise OCIError(f"{what}: layers[{i}] descriptor does not match the layer given for it")
        if self.is_artifact:
            return  # no filesystem: the config is a placeholder and diff_ids do not apply
        diff_ids = self.diff_ids
        if len(diff_ids) != len(declared):
            raise OCIError(
                f"{what}: config lists {len(diff_ids)} diff_ids for {len(declared)} layers",
                hint="the config's rootfs.diff_ids must have one entry per layer",
            )
        for i, (layer, diff_id) in enumerate(zip(self.layers, diff_ids, strict=True)):
            if layer.diff_id != diff_id:
                raise OCIError(f"{what}: layers[{i}] diff_id {layer.diff_id} differs from the config's {diff_id}")

    @cached_property
    def digest(self) -> Digest:
        return Digest.of_bytes(self.manifest_bytes)

    @cached_property
    def _manifest(self) -> dict[str, Any]:
        return parse_json_object(self.manifest_bytes, f"image manifest {Digest.of_bytes(self.manifest_bytes)}")

    @cached_property
    def _config(self) -> dict[str, Any]:
        return parse_json_object(self.config_bytes, f"image config of {self.digest}")

    @property
    def manifest(self) -> dict[str, Any]:
        """A parsed copy of the manifest (mutating it changes nothing)."""
        return copy.deepcopy(self._manifest)

    @property
    def config(self) -> dict[str, Any]:
        """A parsed copy of the config (mutating it changes nothing)."""
        return copy.deepcopy(self._config)

    @property
    def media_type(self) -> str:
        # Docker v2 manifests always carry mediaType; OCI ones should, and default to OCI when absent.
        mt = self._manifest.get("mediaType", OCI_MANIFEST)
        return str(mt)

    @property
    def descriptor(self) -> Descriptor:
        size = len(self.manifest_bytes)
        return Descriptor(self.media_type, self.digest, size, platform=self.platform, artifact_type=self.artifact_type)

    @property
    def artifact_type(self) -> str | None:
        """The manifest's ``artifactType`` (image-spec 1.1), set on artifacts such as an attached SBOM."""
        value = self._manifest.get("artifactType")
        return value if isinstance(value, str) else None

    @property
    def subject(self) -> Descriptor | None:
        """The manifest's ``subject`` (image-spec 1.1): the image an attached artifact refers to."""
        value = self._manifest.get("subject")
        if value is None:
            return None
        return Descriptor.from_json(value, origin=f"image manifest {self.digest} subject")

    @property
    def config_descriptor(self) -> Descriptor:
        return Descriptor.from_json(self._manifest.get("config"), origin=f"image manifest {self.digest} config")

    @property
    def config_digest(self) -> Digest:
        """The config digest, which the Docker engine uses as the image ID."""
        return self.config_descriptor.digest

    @property
    def layer_descriptors(self) -> tuple[Descriptor, ...]:
        layers = self._manifest.get("layers")
        if not isinstance(layers, list):
            raise OCIError(f"image manifest {self.digest}: `layers` is not a list")
        return tuple(
            Descriptor.from_json(d, origin=f"image manifest {self.digest} layers[{i}]") for i, d in enumerate(layers)
        )

    @property
    def diff_ids(self) -> tuple[Digest, ...]:
        rootfs = self._config.get("rootfs")
        ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(ids, list):
            raise OCIError(f"image config {self.config_digest}: `rootfs.diff_ids` is missing")
        return tuple(Digest.parse(str(d), origin=f"image config {self.config_digest} diff_ids") for d in ids)

    @property
    def platform(self) -> Platform | None:
        os_, arch = self._config.get("os"), self._config.get("architecture")
        if isinstance(os_, str) and isinstance(arch, str):
            variant = self._config.get("variant")
            return Platform(os_, arch, variant if isinstance(variant, str) else None)
        return None

    @property
    def is_artifact(self) -> bool:
        """True for a manifest whose blobs are not filesystem layers (e.g. an in-toto attestation
        manifest in an index, buildkit ``docs/attestations/attestation-storage.md``). Such manifests
        are carried byte for byte but are not runnable images."""
        return any(not is_layer(d.media_type) for d in self.layer_descriptors)

    @property
    def is_docker(self) -> bool:
        return self.media_type == DOCKER_MANIFEST


def _build(config: Mapping[str, Any], layers: Sequence[Layer], annotations: Mapping[str, str] | None) -> Image:
    cfg = copy.deepcopy(dict(config))
    cfg["rootfs"] = {"type": "layers", "diff_ids": [str(layer.diff_id) for layer in layers]}
    # History pairs with layers (entries without empty_layer); tools such as `docker history` and
    # umoci expect one per layer, so missing ones are derived here, dated like the image.
    history = list(cfg.get("history") or [])
    missing = len(layers) - sum(1 for h in history if not (isinstance(h, dict) and h.get("empty_layer")))
    default = {k: v for k, v in (("created", cfg.get("created")), ("created_by", "repro-build")) if v is not None}
    cfg["history"] = history + [dict(default) for _ in range(max(0, missing))]
    config_bytes = canonical_json_bytes(cfg)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor(OCI_CONFIG, Digest.of_bytes(config_bytes), len(config_bytes)).to_json(),
        "layers": [layer.descriptor.to_json() for layer in layers],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return Image(canonical_json_bytes(manifest), config_bytes, tuple(layers))


def default_config(platform: Platform, epoch: int) -> dict[str, Any]:
    """A minimal config: platform, ``created`` = epoch (RFC 3339 UTC), empty rootfs, no host facts."""
    import datetime

    created = datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cfg: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "created": created,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }
    if platform.variant:
        cfg["variant"] = platform.variant
    return cfg


def new_image(
    config: Mapping[str, Any], layers: Sequence[Layer] = (), annotations: Mapping[str, str] | None = None
) -> Image:
    """A new OCI image from a config object (its ``rootfs`` is replaced) and layers."""
    return _build(config, layers, annotations)


def with_config(image: Image, config: Mapping[str, Any]) -> Image:
    """The same layers with another config (``rootfs`` is derived from the layers)."""
    return _build(config, image.layers, image.manifest.get("annotations"))


def with_annotations(image: Image, annotations: Mapping[str, str]) -> Image:
    return _build(image.config, image.layers, annotations)


def append_layers(image: Image, *layers: Layer, history: Sequence[Mapping[str, Any]] | None = None) -> Image:
    """``image`` with ``layers`` on top. ``history`` gives one entry per new layer; by default
    :func:`_build` pairs each new layer with a ``{"created": <config created>, "created_by": "repro-build"}`` entry.
    """
    cfg = image.config
    if history is not None:
        if len(history) != len(layers):
            raise OCIError(f"append_layers: {len(history)} history entries for {len(layers)} layers")
        cfg["history"] = [*cfg.get("history", []), *(dict(h) for h in history)]
    return _build(cfg, (*image.layers, *layers), image.manifest.get("annotations"))


def image_from_config_bytes(config_bytes: bytes, layers: Sequence[Layer], config_media_type: str = OCI_CONFIG) -> Image:
    """An OCI manifest for exact ``config_bytes`` (kept byte for byte, so the image ID is preserved)."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor(config_media_type, Digest.of_bytes(config_bytes), len(config_bytes)).to_json(),
        "layers": [layer.descriptor.to_json() for layer in layers],
    }
    return Image(canonical_json_bytes(manifest), config_bytes, tuple(layers))


def layers_from_manifest(
    manifest: Mapping[str, Any], config: Mapping[str, Any], path_for: Callable[[Descriptor], Path], *, what: str
) -> tuple[Layer, ...]:
    """Pair a manifest's layer descriptors with the config's ``rootfs.diff_ids`` (shared by every reader).

    For an artifact manifest (a blob that is not a layer type) each blob's diff_id is its digest.
    ``path_for`` returns where the verified blob is (and may fetch it first).
    """
    raw = manifest.get("layers")
    if not isinstance(raw, list):
        raise OCIError(f"{what}: `layers` is not a list")
    descs = [Descriptor.from_json(d, origin=f"{what} layers[{i}]") for i, d in enumerate(raw)]
    if any(not is_layer(d.media_type) for d in descs):
        return tuple(Layer(d, d.digest, path_for(d)) for d in descs)
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(descs):
        count = len(diff_ids) if isinstance(diff_ids, list) else "no"
        raise OCIError(f"{what}: {len(descs)} layers but {count} diff_ids in the config")
    return tuple(
        Layer(d, Digest.parse(str(diff), origin=f"{what} config diff_ids[{i}]"), path_for(d))
        for i, (d, diff) in enumerate(zip(descs, diff_ids, strict=True))
    )


#: Longest label :func:`layer_labels` keeps from another tool's history entry (a whole shell command).
_LABEL_MAX = 48


def layer_labels(config: Mapping[str, Any]) -> list[str]:
    """What each layer holds, bottom first, from ``config``'s history (entries that are not empty layers).

    repro-build's own entries (``repro-build: numpy``) give the group's name; another tool's entry (a
    Dockerfile command) is shortened to its first :data:`_LABEL_MAX` characters. The list may be shorter
    than the layers (a config without history); callers fall back on the digest. Untrusted text: escape
    it before it reaches a terminal.
    """
    labels: list[str] = []
    for h in config.get("history") or []:
        if not isinstance(h, dict) or h.get("empty_layer"):
            continue
        text = " ".join(str(h.get("created_by") or h.get("comment") or "").split())
        text = text.removeprefix("repro-build: ").removeprefix("/bin/sh -c ").removeprefix("#(nop) ").strip()
        labels.append(text if len(text) <= _LABEL_MAX else text[: _LABEL_MAX - 3] + "...")
    return labels


def describe_layer(index: int, count: int, digest: Digest, labels: Sequence[str]) -> str:
    """``layer 3/7 (numpy) sha256:0123456789ab``: a layer as progress lines name it."""
    label = labels[index] if index < len(labels) and labels[index] else ""
    return f"layer {index + 1}/{count}{f' ({label})' if label else ''} {digest.algorithm}:{digest.hex[:12]}"
