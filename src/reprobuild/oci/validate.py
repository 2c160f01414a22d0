"""One validator for tests and for ``verify`` (go-containerregistry ``pkg/v1/validate``).

:func:`validate_image` checks that every fact an image states about itself holds: manifest and
config media types, the config digest and size, each layer blob's digest and size, each layer's
diff_id (by decompressing it) and the config's ``rootfs.diff_ids``. :func:`validate_layout` does that
for every image reachable from a layout's ``index.json``. Artifact manifests (attestations in an
index) get their blob digests and sizes checked; diff_ids do not apply to them. All problems are collected and reported
together in one :class:`OCIError`.
"""

from __future__ import annotations

from pathlib import Path

from reprobuild.errors import OCIError, ReproBuildError
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import Digest, sha256_file
from reprobuild.oci.image import Image
from reprobuild.oci.index import Artifact
from reprobuild.oci.layer import diff_id_of
from reprobuild.oci.layout import REF_NAME, load_manifest, read_index_json
from reprobuild.oci.mediatypes import CONFIG_TYPES, MANIFEST_TYPES, is_layer


def image_problems(image: Image, *, check_diff_ids: bool = True, check_blobs: bool = True) -> list[str]:
    """Every inconsistency in ``image`` (empty when it is valid).

    ``check_blobs=False`` leaves the layer blobs unread (no digest, size or diff_id check of them): only for
    a caller that hashes every blob again wherever it copies it, as an image build's outputs do.
    """
    what = f"image {image.digest}"
    problems: list[str] = []
    if image.media_type not in MANIFEST_TYPES:
        problems.append(f"{what}: manifest media type {image.media_type!r} is not an image manifest type")
    cfg = image.config_descriptor
    if cfg.media_type not in CONFIG_TYPES:
        problems.append(f"{what}: config media type {cfg.media_type!r} is unknown")
    if Digest.of_bytes(image.config_bytes) != cfg.digest or len(image.config_bytes) != cfg.size:
        problems.append(f"{what}: config bytes do not match descriptor {cfg.digest}")
    artifact = image.is_artifact
    diff_ids: tuple[Digest, ...] = ()
    if not artifact:
        diff_ids = image.diff_ids
        if len(diff_ids) != len(image.layers):
            problems.append(f"{what}: {len(image.layers)} layers but {len(diff_ids)} diff_ids")
    for i, layer in enumerate(image.layers):
        lw = f"{what} layer {i} ({layer.digest})"
        if not artifact and not is_layer(layer.media_type):
            problems.append(f"{lw}: media type {layer.media_type!r} is not a layer type")
            continue
        if not check_blobs:
            continue
        try:
            digest, size = sha256_file(layer.path)
        except OSError as e:
            problems.append(f"{lw}: blob {layer.path} cannot be read: {e}")
            continue
        if size != layer.size:
            problems.append(f"{lw}: blob has {size} bytes, descriptor says {layer.size}")
        if digest != layer.digest:
            problems.append(f"{lw}: blob has digest {digest}")
            continue
        if check_diff_ids and not artifact:
            try:
                actual = diff_id_of(layer)
            except ReproBuildError as e:
                problems.append(f"{lw}: {e.message}")
                continue
            if actual != layer.diff_id:
                problems.append(f"{lw}: uncompressed digest {actual} differs from diff_id {layer.diff_id}")
            if i < len(diff_ids) and diff_ids[i] != actual:
                problems.append(f"{lw}: config diff_ids[{i}] is {diff_ids[i]}, content is {actual}")
    return problems


def artifact_problems(artifact: Artifact, *, check_diff_ids: bool = True, check_blobs: bool = True) -> list[str]:
    if isinstance(artifact, Image):
        return image_problems(artifact, check_diff_ids=check_diff_ids, check_blobs=check_blobs)
    out: list[str] = []
    for d, child in zip(artifact.manifests, artifact.children, strict=True):
        if d.digest != child.digest or d.size != len(child.manifest_bytes):
            out.append(f"index {artifact.digest}: entry {d.digest} does not match its manifest")
        out += artifact_problems(child, check_diff_ids=check_diff_ids, check_blobs=check_blobs)
    return out


def _raise(problems: list[str], subject: str) -> None:
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise OCIError(
            f"{subject} is invalid:\n  {shown}{more}", hint="the artifact is corrupt; rebuild or copy it again"
        )


def validate_image(artifact: Artifact, *, check_diff_ids: bool = True, check_blobs: bool = True) -> None:
    """Raise :class:`OCIError` listing every inconsistency of an image or index (``check_blobs``: as in
    :func:`image_problems`)."""
    _raise(
        artifact_problems(artifact, check_diff_ids=check_diff_ids, check_blobs=check_blobs),
        f"{type(artifact).__name__.lower()} {artifact.digest}",
    )


def validate_layout(path: Path, *, check_diff_ids: bool = True) -> list[Artifact]:
    """Validate every image reachable from the layout's index.json; return them."""
    store = BlobStore(path)
    problems: list[str] = []
    artifacts: list[Artifact] = []
    for desc in read_index_json(path):
        name = desc.annotations.get(REF_NAME, str(desc.digest))
        try:
            art = load_manifest(
                lambda d, w: store.read_verified(d, what=w),
                lambda d: store.path(d.digest),
                desc,
                what=f"layout {path} [{name}]",
            )
        except ReproBuildError as e:
            problems.append(e.message)
            continue
        if art.media_type != desc.media_type:
            problems.append(f"layout {path} [{name}]: index.json says {desc.media_type}, manifest is {art.media_type}")
        if desc.size != len(art.manifest_bytes):
            problems.append(
                f"layout {path} [{name}]: index.json size {desc.size} != manifest size {len(art.manifest_bytes)}"
            )
        problems += artifact_problems(art, check_diff_ids=check_diff_ids)
        artifacts.append(art)
    _raise(problems, f"OCI layout {path}")
    return artifacts


#: The name the issue and go-containerregistry use (``validate.Image``).
validate = validate_image
