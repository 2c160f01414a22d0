"""A tiny, fully deterministic stand-in base: just enough files for base inspection, no real binaries.

Used where a test needs a fixed base digest (the golden test) or a base with particular facts (a
Python that does not match the lock). Images made from it are never run.
"""

from __future__ import annotations

from pathlib import Path

from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.image import Image, default_config, new_image
from reprobuild.oci.layer import write_layer
from reprobuild.oci.layout import write_layout
from reprobuild.oci.tarwriter import LayerEntry
from reprobuild.oci.values import Platform

EPOCH = 1700000000


def _status(python: str, glibc: str) -> bytes:
    minor = ".".join(python.split(".")[:2])
    stanzas = [
        ("libc6", f"{glibc}-9+deb12u1"),
        (f"python{minor}-minimal", f"{python}-6"),
    ]
    text = "\n".join(
        f"Package: {name}\nStatus: install ok installed\nVersion: {version}\nArchitecture: amd64\n"
        for name, version in stanzas
    )
    return text.encode()


def fake_base(dest: Path, *, python: str = "3.11.2", glibc: str = "2.36") -> str:
    """Write an OCI layout at ``dest`` holding the fake base; return ``oci-layout:DEST@DIGEST``."""
    minor = ".".join(python.split(".")[:2])
    entries = [
        LayerEntry.file(f"/usr/bin/python{minor}", b"not a real interpreter\n", mode=0o755),
        LayerEntry.symlink("/usr/bin/python3", f"python{minor}"),
        LayerEntry.directory("/usr/lib/python3/dist-packages"),
        LayerEntry.directory(f"/usr/lib/python{minor}"),
        LayerEntry.file("/var/lib/dpkg/status", _status(python, glibc)),
        LayerEntry.file("/etc/os-release", b'PRETTY_NAME="Fake Debian for tests"\nID=debian\n'),
    ]
    store = BlobStore(dest)
    layer = write_layer(entries, epoch=EPOCH, compressor=Compressor.gzip(6), store=store, workers=1)
    config = default_config(Platform("linux", "amd64"), EPOCH)
    config["config"] = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    image: Image = new_image(config, [layer])
    write_layout(dest, image, tag="base")
    return f"oci-layout:{dest}@{image.digest}"
