"""Media types (OCI image-spec ``media-types.md``; Docker image manifest v2 schema 2).

Both families are read; OCI types are written by default. Docker layer types are compatible with OCI
manifests (image-spec ``media-types.md`` §Compatibility Matrix), so carried base layers keep theirs.
"""

from __future__ import annotations

from typing import Literal

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
#: The empty descriptor's type (image-spec 1.1 ``manifest.md`` "Guidance for an Empty Descriptor"): the
#: config of an artifact manifest that has no config of its own; the blob is the two bytes ``{}``.
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
#: OCI_EMPTY is the config of artifact manifests (an SBOM attached to an image), read and written too.
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG, OCI_EMPTY})

Compression = Literal["gzip", "zstd", "none"]

_LAYER_COMPRESSION: dict[str, Compression] = {
    OCI_LAYER: "none",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_NONDIST_GZIP: "gzip",
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_LAYER_FOREIGN_GZIP: "gzip",
    DOCKER_LAYER: "none",
}

LAYER_TYPES = frozenset(_LAYER_COMPRESSION)


def is_layer(media_type: str) -> bool:
    return media_type in _LAYER_COMPRESSION


def layer_compression(media_type: str) -> Compression | None:
    """The compression a layer media type declares, or None when it is not a layer type."""
    return _LAYER_COMPRESSION.get(media_type)


def oci_layer_type(compression: Compression) -> str:
    """The OCI layer media type written for ``compression``."""
    return {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}[compression]
