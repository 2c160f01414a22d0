"""``repro-build verify MANIFEST --image REF``: is this deployed image exactly the one the manifest describes?

Registry references are checked by reading manifests only (a HEAD, or the index when a tag names one),
so the gate takes well under a second whatever the image size. An OCI layout or archive is checked by
its manifest digest *and* by re-hashing its blobs (a local file can be tampered with under a correct
name). The engine cannot return a manifest: its image ID (the config digest) and its layers' diff_ids
are compared instead. Exit-code contract (the CLI): 0 match, 1 mismatch, 2 error.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from reprobuild.errors import EngineError, ManifestError, ReproBuildError
from reprobuild.manifest.schema import Manifest
from reprobuild.oci.archive import ArchiveDisagreementError, read_archive
from reprobuild.oci.digest import Digest
from reprobuild.oci.image import Image, parse_json_object
from reprobuild.oci.index import Index
from reprobuild.oci.layout import read_layout
from reprobuild.oci.location import Location, parse_location
from reprobuild.oci.mediatypes import INDEX_TYPES
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.oci.validate import artifact_problems
from reprobuild.oci.values import Descriptor, Platform


@dataclass(frozen=True)
class Facts:
    """Digests of one image: what the manifest records or what the gate read at the reference. ``None``:
    not known there (the engine has no manifest digest; a registry index without the platform has no image)."""

    manifest_digest: str | None = None
    config_digest: str | None = None
    index_digest: str | None = None
    image_id: str | None = None
    diff_ids: tuple[str, ...] | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The known facts (``None`` ones left out), as ``verify --image --json`` prints them."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class GateResult:
    """What was compared and whether everything matched."""

    reference: str
    expected: Facts
    found: Facts
    problems: tuple[str, ...]

    @property
    def match(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            "expected": self.expected.to_dict(),
            "found": self.found.to_dict(),
            "match": self.match,
            "problems": list(self.problems),
            "reference": self.reference,
        }


def _registry(loc: Location, platform: str, progress: Progress) -> Facts:
    from reprobuild.oci.registry import RegistryClient
    from reprobuild.oci.remote import fetch_manifest

    ref = loc.reference
    assert ref is not None
    with RegistryClient(ref.api_host) as client:
        data, media_type, digest = fetch_manifest(client, ref.repository, ref.ref, progress)
        obj = parse_json_object(data, f"manifest {ref}")
        index_digest = None
        if str(obj.get("mediaType") or media_type) in INDEX_TYPES or "manifests" in obj:
            index_digest = digest
            wanted = Platform.parse(platform)
            children = [Descriptor.from_json(d, origin=f"index {ref}") for d in obj.get("manifests") or []]
            chosen = next((d for d in children if d.platform and wanted.matches(d.platform)), None)
            if chosen is None:
                return Facts(index_digest=digest, note=f"the index has no {platform} image")
            data, _, digest = fetch_manifest(client, ref.repository, str(chosen.digest), progress)
            obj = parse_json_object(data, f"manifest {ref}@{chosen.digest}")
        config = obj.get("config")
        config_digest = config.get("digest") if isinstance(config, dict) else None
        return Facts(
            manifest_digest=digest,
            config_digest=None if config_digest is None else str(config_digest),
            index_digest=index_digest,
        )


def _local(art: Image | Index, platform: str) -> tuple[Facts, list[str]]:
    """The image's digests and the problems re-hashing its blobs found."""
    image = art
    if isinstance(art, Index):
        from reprobuild.oci.index import select_platform

        image = select_platform(art, Platform.parse(platform))
    assert isinstance(image, Image)
    # Re-hash every blob (a local file can be altered under a correct name), but decompress none: once
    # the manifest digest matches and each blob hashes to its digest, the config's diff_ids and the
    # layers' content are fixed by those digests, and a mismatch is already known without them. So a
    # hostile archive cannot make the gate inflate a compression bomb.
    problems = artifact_problems(image, check_diff_ids=False)
    found = Facts(
        manifest_digest=str(image.digest),
        config_digest=str(image.config_digest),
        index_digest=str(art.digest) if isinstance(art, Index) else None,
        diff_ids=tuple(str(d) for d in image.diff_ids),
    )
    return found, problems


def _engine(loc: Location) -> Facts:
    import docker.errors

    from reprobuild.oci import engine

    client = engine.connect()
    assert loc.name is not None
    try:
        attrs = client.images.get(loc.name).attrs
    except docker.errors.ImageNotFound as e:
        raise EngineError(f"the engine has no image {loc.name}", hint="load it first (`docker load`)") from e
    except engine.ENGINE_ERRORS as e:
        raise EngineError(f"asking the engine for the image {loc.name} failed: {e}") from e
    image_id = attrs.get("Id")
    return Facts(
        image_id=None if image_id is None else str(image_id),
        diff_ids=tuple(str(d) for d in (attrs.get("RootFS") or {}).get("Layers") or []),
    )


def _diff_id_problem(found: tuple[str, ...], expected: tuple[str, ...]) -> str:
    pairs = ", ".join(f"#{i}: {a} vs {b}" for i, (a, b) in enumerate(zip(found, expected, strict=False)) if a != b)
    counts = "" if len(found) == len(expected) else f" ({len(found)} layers vs {len(expected)})"
    return f"layer diff_ids differ: {pairs}{counts}"


def check_image(manifest: Manifest, reference: str, *, progress: Progress = NO_PROGRESS) -> GateResult:
    """Compare the image at ``reference`` with ``manifest`` (checked when it was read); raises only for
    errors (unreachable, missing). Each registry request is a ``progress`` task."""
    outputs = manifest.outputs
    digests = Facts(manifest_digest=outputs.manifest_digest, config_digest=outputs.config_digest)
    loc = parse_location(reference)
    problems: list[str] = []
    if loc.kind == "registry":
        found = _registry(loc, outputs.platform, progress)
        if loc.digest is not None and str(loc.digest) != (found.index_digest or found.manifest_digest):
            problems.append(f"the registry serves {found.manifest_digest} for {reference}")
    elif loc.kind == "docker-daemon":
        found = _engine(loc)
        diff_ids = tuple(layer.diff_id for layer in outputs.layers)
        if found.image_id != outputs.config_digest:
            problems.append(f"image ID {found.image_id} != config digest {outputs.config_digest}")
        if found.diff_ids != diff_ids:
            problems.append(_diff_id_problem(found.diff_ids or (), diff_ids))
        return GateResult(
            reference, Facts(config_digest=outputs.config_digest, diff_ids=diff_ids), found, tuple(problems)
        )
    else:
        assert loc.path is not None
        if not loc.path.exists():
            raise ManifestError(f"{reference}: {loc.path} does not exist", hint="check the path of the image")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                art = (
                    read_layout(loc.path, tag=loc.tag, digest=loc.digest)
                    if loc.kind == "oci-layout"
                    else read_archive(loc.path, Path(tmp), tag=loc.tag)
                )
            except ArchiveDisagreementError:
                raise  # two readings of one file: an error (exit 2), not a comparison result
            except ReproBuildError as e:
                return GateResult(reference, digests, Facts(), (f"unreadable or tampered: {e.message}",))
            found, blob_problems = _local(art, outputs.platform)
        problems.extend(f"blob check: {p}" for p in blob_problems)
    if found.manifest_digest != outputs.manifest_digest:
        note = f" ({found.note})" if found.note else ""
        problems.append(f"manifest digest {found.manifest_digest} != {outputs.manifest_digest}{note}")
    if found.config_digest is not None and found.config_digest != outputs.config_digest:
        problems.append(f"config digest {found.config_digest} != {outputs.config_digest}")
    return GateResult(reference, digests, found, tuple(problems))


def inspect_image(reference: str) -> dict[str, Any]:
    """Digests, layers with what they hold (from the config history), env, and what is attached to the
    image (SBOMs, provenance: its referrers, each with a one-line summary): ``repro-build inspect``."""
    loc = parse_location(reference)
    with tempfile.TemporaryDirectory() as tmp:
        info, subjects = _inspect(reference, loc, Path(tmp) / "image")
        info.update(_attachments(loc, subjects, Path(tmp) / "attachments"))
        return info


def _attachments(loc: Location, subjects: list[Descriptor], staging: Path) -> dict[str, Any]:
    from reprobuild.attest.carry import read_attachments
    from reprobuild.attest.summary import describe

    found, how = read_attachments(loc, subjects, staging)
    return {"attachments": [describe(a) for a in found], "attachments_from": how}


def _inspect(reference: str, loc: Location, tmp: Path) -> tuple[dict[str, Any], list[Descriptor]]:
    """What ``inspect`` shows of the image itself, and the manifests whose attachments it lists."""
    if loc.kind == "registry":
        from reprobuild.oci.registry import RegistryClient

        ref = loc.reference
        assert ref is not None
        with RegistryClient(ref.api_host) as client:
            data, media_type, digest = client.get_manifest(ref.repository, ref.ref)
            obj = parse_json_object(data, f"manifest {ref}")
            subject = Descriptor(str(obj.get("mediaType") or media_type), Digest.parse(digest), len(data))
            if "manifests" in obj:
                children = [Descriptor.from_json(d, origin=f"index {ref}") for d in obj["manifests"]]
                info = {
                    "reference": reference,
                    "index_digest": digest,
                    "manifests": [{"digest": d.get("digest"), "platform": d.get("platform")} for d in obj["manifests"]],
                }
                return info, [subject, *children]
            from reprobuild.oci.remote import read_config_blob

            cfg_desc = obj.get("config") or {}
            cfg = Descriptor.from_json(cfg_desc, origin=f"manifest {ref} config")
            config = parse_json_object(read_config_blob(client, ref.repository, cfg, what=str(ref)), str(ref))
            layers = obj.get("layers") or []
            info = _describe(
                reference,
                digest,
                str(cfg_desc.get("digest")),
                config,
                [(d.get("digest"), d.get("size"), d.get("mediaType")) for d in layers],
            )
            return info, [subject]
    from reprobuild.attest.carry import subjects_of
    from reprobuild.oci.transport import read_location

    art = read_location(loc, tmp, platform=None)
    if isinstance(art, Index):
        info = {
            "reference": reference,
            "index_digest": str(art.digest),
            "manifests": [{"digest": str(d.digest), "platform": str(d.platform)} for d in art.manifests],
        }
        return info, subjects_of(art)
    info = _describe(
        reference,
        str(art.digest),
        str(art.config_digest),
        art.config,
        [(str(layer.digest), layer.size, layer.media_type) for layer in art.layers],
    )
    return info, subjects_of(art)


def _describe(
    reference: str, digest: str, config_digest: str, config: dict[str, Any], layers: list[tuple[Any, Any, Any]]
) -> dict[str, Any]:
    history = [h for h in config.get("history") or [] if not h.get("empty_layer")]
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    runtime = config.get("config") or {}
    return {
        "reference": reference,
        "manifest_digest": digest,
        "config_digest": config_digest,
        "platform": f"{config.get('os')}/{config.get('architecture')}",
        "created": config.get("created"),
        "entrypoint": runtime.get("Entrypoint"),
        "cmd": runtime.get("Cmd"),
        "env": runtime.get("Env") or [],
        "labels": runtime.get("Labels") or {},
        "layers": [
            {
                "digest": d,
                "size": s,
                "media_type": m,
                "diff_id": diff_ids[i] if i < len(diff_ids) else None,
                "holds": (history[i].get("created_by") if i < len(history) else None),
            }
            for i, (d, s, m) in enumerate(layers)
        ],
    }


def git_available() -> bool:
    return subprocess.run(["git", "--version"], capture_output=True, check=False).returncode == 0
