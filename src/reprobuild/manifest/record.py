"""Writing and reading ``build/<target>/manifest.json``.

Canonical JSON (sorted keys, two-space indent, trailing newline), a ``schema`` field, and never a secret
or a host path: paths are relative to the project or the git root, URLs are stripped of credentials,
and wheel URLs are not recorded at all (file name + sha256 identify a wheel).
"""

from __future__ import annotations

import hashlib
import json
import platform as host_platform
import subprocess
from pathlib import Path
from typing import Any

from reprobuild import __version__
from reprobuild.config import Config
from reprobuild.determinism.cuda import cuda_facts
from reprobuild.distribution import COMMAND
from reprobuild.errors import ManifestError
from reprobuild.fsutil import atomic_write_text, human_json_text
from reprobuild.image.build import ImageResult
from reprobuild.lock import target_lock_path
from reprobuild.lock.inputs import BUILD_LOCK, INPUTS_FILE
from reprobuild.uvbin import uv_version

SCHEMA = "repro-build.manifest/v1"
MANIFEST_NAME = "manifest.json"


def _sha256(path: Path) -> str | None:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def project_prefix(root: Path) -> str:
    """The project directory relative to the top of its git repository (``""`` at the top)."""
    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--show-prefix"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip().rstrip("/") if out.returncode == 0 else ""


def cuda_record(result: ImageResult) -> dict[str, Any] | None:
    """CUDA runtime, cuBLAS, cuDNN and NCCL versions from the image's wheels and env; None without CUDA."""
    facts = cuda_facts(((pin.name, pin.version) for pin, _ in result.wheels), list(result.env))
    return facts.to_dict() if facts else None


def image_manifest(config: Config, result: ImageResult, *, image_id: str | None = None) -> dict[str, Any]:
    """The manifest of one image build."""
    target = config.target(result.target)
    lock = target_lock_path(config, target.name)
    locks = {f"locks/{name}": _sha256(config.locks_dir / name) for name in sorted({lock.name, BUILD_LOCK, INPUTS_FILE})}
    image = result.image
    return {
        "schema": SCHEMA,
        "kind": "image",
        "target": target.name,
        "project": {
            "name": config.project.name,
            "version": config.project.version,
            "path": project_prefix(config.root),
        },
        "tools": {COMMAND: __version__, "uv": uv_version(), "python": host_platform.python_version()},
        "compressor": result.compressor,
        "bytecode": result.bytecode,
        "source": {**result.source.to_dict(), "label": result.source_label.to_dict()},
        "epoch": {"seconds": result.epoch.seconds, "source": result.epoch.source},
        "config": {
            "pyproject_sha256": _sha256(config.pyproject),
            "dockerfile_base_sha256": _sha256(config.root / "Dockerfile.base"),
            "target": config.to_dict()["targets"][target.name],
        },
        "locks": locks,
        "base": {**result.base, "python": result.base_info.to_dict()},
        "wheels": [{**pin.to_dict(), "layer": index} for pin, index in result.wheels],
        "project_wheel": result.project_wheel,
        "determinism": result.policy.to_dict(),
        "cuda": cuda_record(result),
        "files": list(result.files),
        "attestations": list(result.attestations),
        "outputs": {
            "manifest_digest": str(image.digest),
            "manifest_media_type": image.media_type,
            "config_digest": str(image.config_digest),
            "image_id": image_id or str(image.config_digest),
            "repo_tag": result.repo_tag,
            "platform": target.platform,
            "layers": [layer.to_dict() for layer in result.layers],
            "env": list(result.env),
        },
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(path, human_json_text(manifest))


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and check the shape of a manifest (``schema`` first, then required sections)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ManifestError(f"{path} does not exist", hint="build first: `repro-build image`") from e
    except (OSError, ValueError) as e:
        raise ManifestError(f"{path} is not valid JSON: {e}", hint="was it edited by hand?") from e
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        schema = data.get("schema") if isinstance(data, dict) else None
        raise ManifestError(
            f"{path}: unknown manifest schema {schema!r} (this repro-build reads {SCHEMA!r})",
            hint="use the repro-build version that wrote it (see its `tools` section)",
        )
    missing = [
        k for k in ("kind", "target", "source", "epoch", "outputs", "wheels", "base", "compressor") if k not in data
    ]
    if missing:
        raise ManifestError(f"{path}: missing section(s) {', '.join(missing)}", hint="was it edited by hand?")
    return data
