"""What `copy` prints for an archive (`oci-archive:PATH@sha256:…`) is accepted back, and held to."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.errors import ConfigError, OCIError
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import default_config, new_image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.location import parse_location
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.transport import copy_image
from reprobuild.oci.values import Platform


def test_printed_archive_reference_round_trips(tmp_path: Path) -> None:
    layer = write_layer(
        [LayerEntry.file("/a", b"a\n")], epoch=0, compressor=Compressor.gzip(), store=BlobStore(tmp_path / "s")
    )
    image = new_image(default_config(Platform("linux", "amd64"), 0), [layer])
    from reprobuild.oci.layout import write_layout

    write_layout(tmp_path / "src", image)
    printed = copy_image(f"oci-layout:{tmp_path / 'src'}", f"oci-archive:{tmp_path / 'img.tar'}")
    assert printed == f"oci-archive:{tmp_path / 'img.tar'}@{image.digest}"
    assert copy_image(printed, f"oci-layout:{tmp_path / 'back'}").endswith(str(image.digest))
    with pytest.raises(OCIError, match="holds"):
        copy_image(f"oci-archive:{tmp_path / 'img.tar'}@sha256:{'0' * 64}", f"oci-layout:{tmp_path / 'x'}")
    with pytest.raises(ConfigError, match="destination takes a tag"):
        copy_image(f"oci-layout:{tmp_path / 'src'}", f"oci-archive:{tmp_path / 'y.tar'}@{image.digest}")
    assert parse_location(printed).digest == image.digest
