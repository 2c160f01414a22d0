"""``repro-build lock --resolve-bases``: pin tag-only ``FROM`` lines of Dockerfile.base to digests.

The digest is what the registry serves for the tag *now* (``HEAD`` of the manifest, the index digest
for multi-platform images), so the pin covers every platform; the tag stays in the line for readers
and for Renovate/Dependabot.
"""

from __future__ import annotations

from pathlib import Path

from reprobuild.dockerfile_base import FILENAME, parse_dockerfile_base, rewrite_pins
from reprobuild.errors import ConfigError, RegistryError
from reprobuild.fsutil import atomic_write_text


def resolve_bases(root: Path) -> list[str]:
    """Pin every unpinned stage; return one line per stage pinned. Writes nothing on error."""
    from reprobuild.oci.registry import RegistryClient

    path = root / FILENAME
    if not path.is_file():
        raise ConfigError(
            f"there is no {FILENAME} in {root}",
            hint="create it with one `FROM <image>:<tag> AS <stage>` line per base, then run this again",
        )
    parsed = parse_dockerfile_base(path)
    pins: dict[str, str] = {}
    lines: list[str] = []
    clients: dict[str, RegistryClient] = {}
    for stage in parsed.unpinned():
        ref = stage.reference
        assert ref is not None  # unpinned() only returns stages with a reference
        client = clients.setdefault(ref.api_host, RegistryClient(ref.api_host))
        try:
            head = client.head_manifest(ref.repository, ref.ref)
        except RegistryError as e:
            raise RegistryError(f"{FILENAME}:{stage.line}: resolving {stage.image!r}: {e.message}", e.hint) from e
        if head is None:
            raise RegistryError(
                f"{FILENAME}:{stage.line}: {stage.image!r} does not exist in the registry",
                hint="check the name and tag",
            )
        digest = head[0]
        pins[stage.name] = digest
        lines.append(f"pinned stage {stage.name!r}: {stage.image} -> {digest}")
    if pins:
        atomic_write_text(path, rewrite_pins(path, pins))
    else:
        lines.append(f"{FILENAME}: every stage is already pinned")
    return lines
