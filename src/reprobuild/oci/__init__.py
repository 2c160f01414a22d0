"""OCI core: immutable image values, canonical layers, compression, and image sources/sinks.

Modelled on go-containerregistry's ``pkg/v1`` (small immutable values, derived facts computed in one
place, sources and sinks at the edges). Specs: OCI image-spec v1.1 (manifest, index, layout, config,
descriptor), the Docker image manifest v2 schema 2 (read only), and the ``docker load`` archive format.

API summary (import from the submodules; every value is a frozen dataclass, every mutation returns a
new value, every error is a :class:`reprobuild.errors.ReproBuildError` naming the artifact):

Digests and descriptors
    ``digest.Digest.parse("sha256:…")``, ``Digest.of_bytes(b)``, ``digest.sha256_file(path)``
    ``values.Descriptor(media_type, digest, size, annotations=…, platform=…)``,
    ``values.Platform(os, architecture, variant)``, ``Platform.parse("linux/amd64")``
    ``mediatypes``: ``OCI_MANIFEST``, ``OCI_INDEX``, ``OCI_CONFIG``, ``OCI_LAYER_GZIP`` … and the Docker v2 equivalents.

Writing layers (canonical tar; see :mod:`reprobuild.oci.tarwriter`)
    ``tarwriter.LayerEntry.file(path, data=b"…" | source=Path, mode=0o644)``, ``LayerEntry.directory(path)``,
    ``LayerEntry.symlink(path, target)``, ``LayerEntry.hardlink(path, target)``
    ``tarwriter.entries_from_tree(root, prefix="/app")`` -> ``list[LayerEntry]`` (no I/O of file contents yet)
    ``tarwriter.entries_from_tar(rootfs_tar, prefix="/")`` -> entries that stream from an uncompressed tar
    ``compress.Compressor.of("gzip" | "zstd" | "none", level=None)`` (checked against ``compress.LEVELS``),
    ``Compressor.gzip(level=6)`` / ``.zstd(level=3)`` / ``.none()``, ``Compressor.parse("zstd:9")``; the
    library versions are read when it is made; ``Compressor.describe()`` -> dict for the build manifest
    (implementation, library + C library version, level, block size).
    ``blobstore.BlobStore(dir)``: content-addressed ``blobs/sha256/<hex>``, temp + verify + rename.
    ``layer.write_layer(entries, epoch=Epoch|int, compressor=…, store=BlobStore, workers=None,
    preserve_metadata=False, annotations=None)``
    -> ``Layer``; one pass: tar -> sha256 (diff_id) -> compressor -> sha256 (digest) -> blob file;
    ``annotations`` go on the descriptor only. ``Layer.annotated(annotations)``: the same blob, more annotations.
    ``layer.layer_from_blob(store, descriptor, diff_id)``: an existing compressed blob, carried as it is.

Images and indexes
    ``layer.Layer(descriptor, diff_id, path)``: ``media_type``, ``digest``, ``size``, ``diff_id``,
    ``open_compressed()``, ``open_uncompressed()``; ``layer.layer_from_tar(tar, compressor=, store=)``
    (compress an existing tar as it is); ``layer.diff_id_of(layer)`` (recompute by decompressing).
    ``image.Image(manifest_bytes, config_bytes, layers)``: ``digest``, ``config_digest`` (= engine image ID),
    ``manifest`` / ``config`` (parsed copies), ``diff_ids``, ``platform``, ``descriptor``, ``media_type``.
    ``image.new_image(config: dict, layers, annotations=None)`` (canonical OCI manifest + config JSON;
    ``rootfs`` and missing ``history`` entries derived from the layers), ``image.append_layers(img, *layers,
    history=None)``, ``image.with_config(img, config)``, ``image.with_annotations(img, annotations)``,
    ``image.default_config(platform, epoch_seconds)``, ``image.image_from_config_bytes(config_bytes, layers)``.
    ``index.Index(manifest_bytes, children)``: ``manifests`` (descriptors), ``children``, ``digest``;
    ``index.new_index([(image, platform | None)])``, ``index.select_platform(idx, Platform)``.

Sources and sinks
    ``layout.write_layout(path, image_or_index, tag=None)`` / ``layout.read_layout(path, tag=None, digest=None)``
    ``archive.write_archive(path, image, repo_tags=["name:tag"])``: one tar that is an OCI layout AND a
    ``docker load`` archive (gzip/uncompressed layers); ``archive.read_archive(path, staging_dir)`` (also
    reads plain ``docker save`` archives).
    ``engine.connect()``, ``engine.load_image(client, image, "name:tag", staging)`` -> image ID (checked ==
    config digest), ``engine.load_archive(client, path)``, ``engine.save_image(client, name, staging)``
    (an engine cannot return the original compressed blobs: layer digests change, diff_ids do not).
    ``remote.pull(client, repository, reference, store, platform=None, jobs=4)`` -> Image | Index;
    ``remote.push(client, repository, image_or_index, tags=[], jobs=4)`` -> digest (client:
    ``registry.RegistryClient``); blobs move ``jobs`` at a time, manifests and tags are written last, in order.
    ``validate.validate(img)`` (= ``validate_image``) / ``validate.validate_layout(path)``: digests, sizes,
    diff_ids, media types; ``validate.image_problems(img)`` -> list of messages.
    ``safetar.iter_layer(layer)`` / ``safetar.iter_layer_entries(fileobj, artifact=…)``: safe reader for
    inspecting base layers (rejects ``..``, absolute paths, escaping symlinks, dangling hardlinks, device
    nodes; flags whiteouts); ``safetar.read_files(layers, ["/etc/os-release"])`` overlays layers.
    ``location.parse_location("oci:DIR[:TAG|@sha256:…]" | "oci-archive:FILE" | "docker-archive:FILE" |
    "docker-daemon:NAME[:TAG]" | "docker://host/name:tag" | "host/name@sha256:…" | an existing DIR or .tar)``;
    ``transport.read_location(loc, staging, platform=None)`` / ``transport.write_location(loc, artifact, staging)``;
    ``transport.copy_image(src, dst, platform=None)`` -> ``"name@sha256:…"`` (``repro-build copy``).
    ``progress.Progress`` / ``NO_PROGRESS`` / ``Task``: named tasks (downloads, layers, pushes); the CLI shows them
    (``reprobuild.cli.progress``: bars on a TTY, one line per start and end otherwise).
"""
