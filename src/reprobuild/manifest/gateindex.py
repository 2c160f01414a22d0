"""``repro-build verify MANIFEST --image REF`` where MANIFEST is a multi-platform target's index manifest.

REF must name the index itself (a registry tag or digest, an OCI layout, an archive): each platform's image
in it is checked as :func:`reprobuild.manifest.gate.check_image` checks one image, and the index's digest
must be the recorded one. An engine (``docker-daemon:``) holds one platform: only the image of this
machine's platform is checked there, and the result says so.
"""

from __future__ import annotations

from dataclasses import replace

from reprobuild.manifest.gate import Facts, GateResult, check_image
from reprobuild.manifest.indexschema import IndexManifest
from reprobuild.oci.location import parse_location
from reprobuild.oci.progress import NO_PROGRESS, Progress
from reprobuild.platforms import host_arch


def check_index(manifest: IndexManifest, reference: str, *, progress: Progress = NO_PROGRESS) -> GateResult:
    """Compare the index at ``reference`` (every platform's image, and the index digest) with ``manifest``."""
    expected = manifest.index.digest
    problems: list[str] = []
    if parse_location(reference).kind == "docker-daemon":
        wanted = f"linux/{host_arch()}"
        image = next((m for m in manifest.images if m.outputs.platform == wanted), None)
        if image is None:
            problems.append(f"the index has no {wanted} image, the only platform an engine here holds")
            return GateResult(reference, Facts(index_digest=expected), Facts(), tuple(problems))
        one = check_image(image, reference, progress=progress)
        note = f"an engine holds one platform: only the {wanted} image was checked"
        return GateResult(reference, one.expected, replace(one.found, note=note), one.problems)
    found: str | None = None
    for platform, image in zip(manifest.platforms, manifest.images, strict=True):
        one = check_image(image, reference, progress=progress)
        problems += [f"{platform}: {p}" for p in one.problems]
        found = found or one.found.index_digest
    if found is None:
        problems.append(f"{reference} is one image, not an index (the index is {expected})")
    elif found != expected:
        problems.append(f"index digest {found} != {expected}")
    return GateResult(reference, Facts(index_digest=expected), Facts(index_digest=found), tuple(problems))
