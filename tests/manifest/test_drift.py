"""`verify` warns before rebuilding when the manifest's compressor differs from the one this install pins."""

from __future__ import annotations

import dataclasses

from reprobuild.manifest.schema import JsonObject, Manifest
from reprobuild.manifest.verify import drift_warnings
from reprobuild.oci.compress import Compressor
from tests.manifest.schemacheck import sample

#: The compressor object a repro-build before libdeflate wrote (docs/reference/manifest.md history).
ZLIB_ERA: JsonObject = {
    "algorithm": "gzip",
    "block_size": 1048576,
    "implementation": "repro-build fixed-block parallel gzip (Python zlib)",
    "level": 6,
    "library": "zlib",
    "library_version": "1.2.13",
}


def _compressor_warnings(compressor: JsonObject) -> list[str]:
    manifest = dataclasses.replace(Manifest.from_json(sample()), compressor=compressor)
    return [w for w in drift_warnings(manifest, Compressor.gzip().describe()) if w.startswith("compressor ")]


def test_same_compressor_gives_no_warning() -> None:
    assert _compressor_warnings(Compressor.gzip().describe()) == []


def test_a_zlib_era_manifest_names_every_difference() -> None:
    warnings = _compressor_warnings(ZLIB_ERA)
    keys = sorted(w.split(":", 1)[0].removeprefix("compressor ") for w in warnings)
    assert keys == ["implementation", "library", "library_version", "package", "package_version"]
    assert "compressor library: the manifest has 'zlib', this build uses 'libdeflate'" in warnings


def test_another_libdeflate_version_is_named() -> None:
    older = {**Compressor.gzip().describe(), "library_version": "1.24", "package_version": "0.8.1"}
    assert _compressor_warnings(older) == [
        "compressor library_version: the manifest has '1.24', this build uses '1.25'",
        "compressor package_version: the manifest has '0.8.1', this build uses '0.9.0'",
    ]
