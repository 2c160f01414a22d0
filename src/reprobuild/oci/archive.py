"""One tarball that is both an OCI image layout and a ``docker load`` archive.

Layout part (image-spec ``image-layout.md``): ``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``.
Docker part (the ``docker save`` format Docker 20.10 loads): ``manifest.json`` is
``[{"Config": "blobs/sha256/<config>", "RepoTags": [...], "Layers": ["blobs/sha256/<layer>", ...]}]``
pointing at the *same* blob files, and ``repositories`` (``{"name": {"tag": "<config hex>"}}``) for
old readers. Docker loads gzip and uncompressed layers (not zstd, before engine 23), and the image ID
it reports is the config digest (checked against Docker 20.10 by tests/oci/test_archive.py).

The tar itself is canonical: uid/gid 0, empty names, mtime 0, modes 0644/0755, and entries in an order
fixed by the image: the blob directories, then every blob once, image by image from the bottom layer up
(then its config and manifest), then the metadata. Bottom layers first is what lets a build copy its
base's layers into the archive while the layers above are still being built (:class:`ArchiveWriter`).

Reading accepts an OCI archive (ours, skopeo's ``oci-archive:``) or a plain ``docker save`` archive
(``manifest.json`` only, uncompressed ``<id>/layer.tar`` layers). Blobs are verified while they are
extracted into a staging :class:`BlobStore`; names other than the known ones are never extracted, and
``..``, absolute names, links and devices are rejected.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from reprobuild.errors import OCIError
from reprobuild.fsutil import atomic_writer, canonical_json_bytes
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.digest import CHUNK, SHA256_HEX_RE, Digest, sha256_file
from reprobuild.oci.image import Image, image_from_config_bytes, parse_json_object
from reprobuild.oci.index import Artifact, Index
from reprobuild.oci.layer import Layer
from reprobuild.oci.layout import LAYOUT_VERSION, REF_NAME, read_index_json, read_layout
from reprobuild.oci.mediatypes import OCI_CONFIG, OCI_INDEX, OCI_LAYER, layer_compression
from reprobuild.oci.values import Descriptor

_BLOBS = "blobs/sha256/"
_METADATA = {"oci-layout", "index.json", "manifest.json", "repositories"}


def _images(artifact: Artifact) -> list[Image]:
    """The runnable images of ``artifact`` (artifact manifests such as attestations are left out)."""
    if isinstance(artifact, Image):
        return [] if artifact.is_artifact else [artifact]
    out: list[Image] = []
    for child in artifact.children:
        out += _images(child)
    return out


def _split_tag(repo_tag: str) -> tuple[str, str]:
    name, sep, tag = repo_tag.rpartition(":")
    if not sep or "/" in tag:
        return repo_tag, "latest"
    return name, tag


def docker_manifest_json(artifact: Artifact, repo_tags: Sequence[str]) -> tuple[bytes, bytes]:
    """``manifest.json`` and ``repositories`` for ``docker load``; tags go to the first image."""
    images = _images(artifact)
    entries = []
    repositories: dict[str, dict[str, str]] = {}
    for i, img in enumerate(images):
        for layer in img.layers:
            if layer_compression(layer.media_type) == "zstd":
                raise OCIError(
                    f"layer {layer.digest} is zstd-compressed, which `docker load` of engine 20.10 cannot read",
                    hint="write the image with gzip (the default) for a docker-loadable archive",
                )
        tags = list(repo_tags) if i == 0 else []
        entries.append(
            {
                "Config": f"blobs/sha256/{img.config_digest.hex}",
                "RepoTags": tags,
                "Layers": [f"blobs/sha256/{layer.digest.hex}" for layer in img.layers],
            }
        )
        for t in tags:
            name, tag = _split_tag(t)
            repositories.setdefault(name, {})[tag] = img.config_digest.hex
    return canonical_json_bytes(entries), canonical_json_bytes(repositories)


def _add(tf: tarfile.TarFile, name: str, data: bytes | None = None, *, src: Path | None = None, size: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    if data is None and src is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(info)
        return
    info.mode = 0o644
    if data is not None:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    else:
        assert src is not None
        info.size = size
        with src.open("rb") as f:
            tf.addfile(info, f)


class _HashingReader:
    """The file ``f`` as ``tarfile`` reads it, hashed on the way (a blob is checked as it is copied)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._h = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1, /) -> bytes:
        data = self._f.read(n)
        self._h.update(data)
        self.size += len(data)
        return data

    @property
    def digest(self) -> Digest:
        return Digest(self._h.hexdigest())


def _add_layer(tf: tarfile.TarFile, name: str, layer: Layer) -> None:
    """Add ``layer``'s blob, checking it against its digest and size while it is copied (one read)."""
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o644
    info.size = layer.size
    try:
        f = layer.path.open("rb")
    except OSError as e:
        raise OCIError(f"layer {layer.digest}: cannot read its blob {layer.path}: {e}") from e
    with f:
        reader = _HashingReader(f)
        try:
            tf.addfile(info, reader)
        except OSError:  # tarfile: "unexpected end of data" from a short blob
            if reader.size >= layer.size:
                raise
        extra = len(f.read(1))
    if reader.digest != layer.digest or reader.size + extra != layer.size:
        actual = sha256_file(layer.path)
        raise OCIError(
            f"layer {layer.digest}: its blob {layer.path} has digest {actual[0]} and {actual[1]} bytes",
            hint="the source blob is corrupt; fetch the image again",
        )


def write_archive(path: Path, artifact: Artifact, *, repo_tags: Sequence[str] = (), tag: str | None = None) -> None:
    """Write ``artifact`` as one OCI-layout + docker-load tar at ``path`` (atomically).

    ``tag`` goes into index.json's ref.name annotation (default: the tag of the first repo tag).
    Layer blobs are hashed while they are copied in, so a corrupt source never yields an archive.
    """
    with ArchiveWriter(path) as writer:
        writer.finish(artifact, repo_tags=repo_tags, tag=tag)


def _archive_blobs(artifact: Artifact) -> list[tuple[str, bytes | Layer]]:
    """Every blob of ``artifact`` once, in the archive's order: image by image (an index's children in
    its order), each image's layers from the bottom up, then its config and manifest; an index's own
    manifest after its children's."""
    out: dict[str, bytes | Layer] = {}

    def walk(art: Artifact) -> None:
        if isinstance(art, Index):
            for child in art.children:
                walk(child)
        else:
            for layer in art.layers:
                out.setdefault(layer.digest.hex, layer)
            out.setdefault(art.config_digest.hex, art.config_bytes)
        out.setdefault(art.digest.hex, art.manifest_bytes)

    walk(artifact)
    return list(out.items())


class ArchiveWriter:
    """An archive written in two steps, so that its large blobs can be copied in before the image is
    known: :meth:`add_layers` appends layers that begin the archive's blob order (an image's bottom
    layers, e.g. its base's, while the layers above are still being built), :meth:`finish` writes every
    other blob and the metadata and puts the file in place. The bytes are those of a single
    :func:`write_archive` whatever was added early: if the early layers turn out not to begin the
    final order, the archive is started again.

    Used as a context manager: leaving it without :meth:`finish` (on an error) removes the partial file,
    and nothing is ever at ``path`` before :meth:`finish` has written all of it.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._tmp = Path(tmp)
        self._out = os.fdopen(fd, "wb")
        self._done = False
        self._written: list[str] = []
        self._tf = self._start()

    def _start(self) -> tarfile.TarFile:
        # copybufsize: blobs are copied in CHUNK reads (tarfile's default is 16 KiB; see CHUNK). Bytes unchanged.
        tf = tarfile.TarFile(fileobj=self._out, mode="w", format=tarfile.USTAR_FORMAT, copybufsize=CHUNK)
        _add(tf, "blobs/")
        _add(tf, "blobs/sha256/")
        return tf

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def discard(self) -> None:
        """Remove the unfinished archive (nothing, once :meth:`finish` has put it in place)."""
        if not self._done:
            self._done = True
            self._out.close()
            self._tmp.unlink(missing_ok=True)

    def add_layers(self, layers: Sequence[Layer]) -> None:
        """Copy ``layers`` in (each checked against its digest and size while it is copied)."""
        for layer in layers:
            if layer.digest.hex not in self._written:
                _add_layer(self._tf, f"{_BLOBS}{layer.digest.hex}", layer)
                self._written.append(layer.digest.hex)

    def sync(self) -> None:
        """Put what was added so far on disk, so that :meth:`finish` has only the rest to flush."""
        self._out.flush()
        os.fdatasync(self._out.fileno())

    def finish(self, artifact: Artifact, *, repo_tags: Sequence[str] = (), tag: str | None = None) -> None:
        """Write the rest of ``artifact`` (see :func:`write_archive`) and put the archive in place."""
        manifest_json, repositories = docker_manifest_json(artifact, repo_tags)
        ref = tag if tag is not None else (_split_tag(repo_tags[0])[1] if repo_tags else None)
        desc = artifact.descriptor
        if ref:
            desc = desc.with_annotations({REF_NAME: ref})
        index = canonical_json_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc.to_json()]})
        blobs = _archive_blobs(artifact)
        for hex_, blob in blobs:
            if isinstance(blob, bytes) and Digest.of_bytes(blob).hex != hex_:
                raise OCIError(f"blob {hex_} does not match its content")
        if [hex_ for hex_, _ in blobs[: len(self._written)]] != self._written:
            self._out.seek(0)  # what was added early does not begin this artifact: start again
            self._out.truncate()
            self._written = []
            self._tf = self._start()
        for hex_, blob in blobs[len(self._written) :]:
            if isinstance(blob, bytes):
                _add(self._tf, f"{_BLOBS}{hex_}", blob)
            else:
                _add_layer(self._tf, f"{_BLOBS}{hex_}", blob)
        _add(self._tf, "index.json", index)
        _add(self._tf, "manifest.json", manifest_json)
        _add(self._tf, "oci-layout", canonical_json_bytes(LAYOUT_VERSION))
        _add(self._tf, "repositories", repositories)
        self._tf.close()
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        self._tmp.chmod(0o644)  # mkstemp creates 0600; the mode must not depend on the umask
        self._tmp.replace(self._path)
        self._done = True


def _safe_name(m: tarfile.TarInfo, archive: Path) -> str:
    name = m.name
    if name.startswith("/") or ".." in PurePosixPath(name).parts or "\0" in name:
        raise OCIError(
            f"archive {archive}: entry {m.name!r} escapes the archive root",
            hint="the archive is hostile or corrupt; nothing was extracted outside the staging dir",
        )
    if m.isdev() or m.isfifo():
        raise OCIError(f"archive {archive}: entry {m.name!r} is a device node or FIFO")
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


class _Reader:
    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n if n >= 0 else CHUNK)


def read_archive(path: Path, staging: Path, *, tag: str | None = None) -> Artifact:
    """Read an OCI archive or a ``docker save`` archive; blobs are verified into ``staging``."""
    store = BlobStore(staging)
    meta: dict[str, bytes] = {}
    others: dict[str, tarfile.TarInfo] = {}
    try:
        with tarfile.open(path, mode="r:*") as tf:
            for m in tf:
                name = _safe_name(m, path)
                if m.isdir():
                    continue
                blob = _blob_digest(name)
                if m.issym() or m.islnk():
                    if blob is not None or name in _METADATA:
                        raise OCIError(f"archive {path}: {name!r} is a link, not a file")
                    others[name] = m
                    continue
                if blob is not None:
                    f = tf.extractfile(m)
                    assert f is not None
                    store.copy_from(
                        _Reader(f),  # type: ignore[arg-type]
                        expected=blob,
                        size=m.size,
                        what=f"archive {path} blob {name}",
                    )
                elif name in _METADATA:
                    if m.size > 16 << 20:
                        raise OCIError(f"archive {path}: {name} is implausibly large ({m.size} bytes)")
                    f = tf.extractfile(m)
                    assert f is not None
                    meta[name] = f.read()
                else:
                    others[name] = m
            if "index.json" in meta and "oci-layout" in meta:
                for name in ("oci-layout", "index.json"):
                    with atomic_writer(staging / name) as out:
                        out.write(meta[name])
                artifact = read_layout(staging, tag=tag)
                if "manifest.json" in meta:
                    check_docker_agrees(path, staging, meta["manifest.json"])
                return artifact
            if "manifest.json" in meta:
                return _read_docker_save(tf, path, store, meta["manifest.json"], others)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise OCIError(f"reading archive {path}: {e}", hint="the archive is truncated or not a tar") from e
    raise OCIError(f"archive {path} has neither index.json + oci-layout nor manifest.json")


class ArchiveDisagreementError(OCIError):
    """An archive's ``index.json`` and ``manifest.json`` describe different images."""


def _docker_view(path: Path, manifest_json: bytes) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """``(config, layers, repo tags)`` of each image ``docker load`` would load from ``manifest.json``."""
    try:
        entries: Any = json.loads(manifest_json)
    except ValueError as e:
        raise OCIError(f"archive {path}: manifest.json is not JSON: {e}", hint="the archive is corrupt") from e
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise OCIError(f"archive {path}: manifest.json is not a list of images", hint="the archive is corrupt")

    def norm(name: object) -> str:
        text = str(name)
        while text.startswith("./"):
            text = text[2:]
        return text

    out = []
    for entry in entries:
        layers = entry.get("Layers") or []
        tags = entry.get("RepoTags") or []
        if not isinstance(layers, list) or not isinstance(tags, list):
            raise OCIError(f"archive {path}: manifest.json has an entry with malformed Layers or RepoTags")
        out.append((norm(entry.get("Config", "")), tuple(norm(x) for x in layers), tuple(str(t) for t in tags)))
    return out


def _blob_digest(name: str) -> Digest | None:
    """The digest a ``blobs/sha256/<hex>`` member name gives its blob; None for any other name."""
    hex_ = name.removeprefix(_BLOBS)
    return Digest(hex_) if name.startswith(_BLOBS) and SHA256_HEX_RE.match(hex_) else None


def _blob_name(name: str) -> str:
    """``sha256:<hex>`` for a ``blobs/sha256/<hex>`` member name, else the name itself (for messages)."""
    blob = _blob_digest(name)
    return str(blob) if blob is not None else name


def check_docker_agrees(path: Path, layout: Path, manifest_json: bytes) -> None:
    """Refuse an archive whose ``manifest.json`` (what ``docker load`` loads) differs from ``index.json``.

    The same file is read two ways: OCI readers (this tool, skopeo, containerd) follow ``index.json``,
    ``docker load`` follows ``manifest.json``. Every image ``manifest.json`` lists must be one that
    ``index.json`` holds (same config blob, same layer blobs in the same order), the two must list the
    same images, and a tag ``manifest.json`` gives must name the image ``index.json`` tags with it;
    otherwise a gate that reads one view could pass an archive that deploys the other.
    """
    oci: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    for desc in read_index_json(layout):
        for img in _images(read_layout(layout, digest=desc.digest)):
            key = (f"blobs/sha256/{img.config_digest.hex}", tuple(f"blobs/sha256/{x.digest.hex}" for x in img.layers))
            ref = desc.annotations.get(REF_NAME)
            oci.setdefault(key, set()).update({ref} if ref else set())
    docker = _docker_view(path, manifest_json)
    oci_configs = ", ".join(sorted(_blob_name(c) for c, _ in oci)) or "none"
    for config, layers, tags in docker:
        if (config, layers) not in oci:
            same_config = [ls for c, ls in oci if c == config]
            detail = (
                f"the layers differ ({len(layers)} in manifest.json, {len(same_config[0])} in index.json)"
                if same_config
                else f"index.json has config {oci_configs}"
            )
            raise ArchiveDisagreementError(
                f"archive {path}: manifest.json (what `docker load` loads) names config {_blob_name(config)}, "
                f"which index.json does not describe: {detail}",
                hint="the archive is hostile or corrupt: `docker load` would run another image than the one "
                "checked. Rebuild or copy it again from a trusted source",
            )
        for tag in tags:
            short = _split_tag(tag)[1]
            elsewhere = [_blob_name(c) for (c, _), r in oci.items() if short in r and c != config]
            if elsewhere:
                raise ArchiveDisagreementError(
                    f"archive {path}: manifest.json tags config {_blob_name(config)} as {tag!r}, but index.json "
                    f"tags {', '.join(elsewhere)} as {short!r}",
                    hint="the archive is hostile or corrupt; rebuild or copy it again from a trusted source",
                )
    missing = set(oci) - {(c, ls) for c, ls, _ in docker}
    if missing and docker:
        raise ArchiveDisagreementError(
            f"archive {path}: index.json holds config {', '.join(sorted(_blob_name(c) for c, _ in missing))}, "
            f"which manifest.json (what `docker load` loads) leaves out; manifest.json names "
            f"{', '.join(sorted(_blob_name(c) for c, _, _ in docker))}",
            hint="the archive is hostile or corrupt; rebuild or copy it again from a trusted source",
        )


def _read_docker_save(
    tf: tarfile.TarFile, path: Path, store: BlobStore, manifest_json: bytes, others: dict[str, tarfile.TarInfo]
) -> Image:
    """A ``docker save`` archive: exact config bytes (image ID kept), uncompressed layers."""
    try:
        entries: Any = json.loads(manifest_json)
    except ValueError as e:
        raise OCIError(f"archive {path}: manifest.json is not JSON: {e}") from e
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise OCIError(f"archive {path}: manifest.json must describe exactly one image")
    entry = entries[0]

    def member(name: str, depth: int = 0) -> tarfile.TarInfo:
        while name.startswith("./"):
            name = name[2:]
        m = others.get(name)
        if m is None:
            raise OCIError(f"archive {path}: manifest.json names {name!r}, which is not in the archive")
        if m.issym() and depth < 8:
            target = PurePosixPath(name).parent / m.linkname
            parts: list[str] = []
            for p in target.parts:
                if p == "..":
                    if not parts:
                        raise OCIError(f"archive {path}: link {name!r} points outside the archive")
                    parts.pop()
                elif p != ".":
                    parts.append(p)
            return member("/".join(parts), depth + 1)
        if not m.isreg():
            raise OCIError(f"archive {path}: {name!r} is not a regular file")
        return m

    def read_member(name: str) -> bytes:
        f = tf.extractfile(member(name))
        assert f is not None
        return f.read()

    config_name = str(entry.get("Config", ""))
    config = read_member(config_name)
    hex_ = PurePosixPath(config_name).name.removesuffix(".json")
    if SHA256_HEX_RE.match(hex_) and Digest.of_bytes(config).hex != hex_:
        raise OCIError(f"archive {path}: config {config_name} does not match its name")
    cfg = parse_json_object(config, f"archive {path} config")
    diff_ids = (cfg.get("rootfs") or {}).get("diff_ids") or []
    layer_names = entry.get("Layers") or []
    if len(diff_ids) != len(layer_names):
        raise OCIError(f"archive {path}: {len(layer_names)} layers but {len(diff_ids)} diff_ids in the config")
    layers = []
    for i, (name, diff) in enumerate(zip(layer_names, diff_ids, strict=True)):
        expected = Digest.parse(str(diff), origin=f"archive {path} config diff_ids[{i}]")
        m = member(str(name))
        f = tf.extractfile(m)
        assert f is not None
        # docker save writes uncompressed layer tars, so the blob digest is the diff_id itself.
        store.copy_from(_Reader(f), expected=expected, size=m.size, what=f"archive {path} layer {name}")  # type: ignore[arg-type]
        layers.append(Layer(Descriptor(OCI_LAYER, expected, m.size), expected, store.path(expected)))
    return image_from_config_bytes(config, layers, OCI_CONFIG)
