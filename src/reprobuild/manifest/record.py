"""The :class:`~reprobuild.manifest.schema.Manifest` of an image build, made from what ``image`` produced.

Never a secret or a host path: paths are relative to the project or the git root, URLs are stripped of
credentials, and wheel URLs are not recorded at all (file name + sha256 identify a wheel).
"""

from __future__ import annotations

import hashlib
import platform as host_platform
import subprocess
from pathlib import Path

from reprobuild import __version__
from reprobuild.config import Config, target_record
from reprobuild.determinism.cuda import cuda_facts
from reprobuild.image.build import ImageResult
from reprobuild.lockdir import BUILD_LOCK, INPUTS_FILE
from reprobuild.manifest.schema import (
    SCHEMA,
    Attestation,
    Bytecode,
    ConfigRecord,
    Epoch,
    FileRecord,
    JsonObject,
    Label,
    Layer,
    Manifest,
    Outputs,
    Project,
    Source,
    Tools,
    Wheel,
    read_base,
    read_section,
)
from reprobuild.uvbin import uv_version


def _sha256(path: Path) -> str | None:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def project_prefix(root: Path) -> str:
    """The project directory relative to the top of its git repository (``""`` at the top)."""
    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--show-prefix"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip().rstrip("/") if out.returncode == 0 else ""


def cuda_record(result: ImageResult) -> JsonObject | None:
    """CUDA runtime, cuBLAS, cuDNN and NCCL versions from the image's wheels and env; None without CUDA."""
    facts = cuda_facts(((pin.name, pin.version) for pin, _ in result.wheels), list(result.env))
    return facts.to_dict() if facts else None


def image_manifest(config: Config, result: ImageResult, *, image_id: str | None = None) -> Manifest:
    """The manifest of one image build."""
    target = config.target(result.target)
    if target.multi_platform:  # one platform of it: the image's architecture says which
        target = target.for_arch(str(result.image.config.get("architecture", "")))
    lock = config.locks_dir / target.lock_name
    rel = config.locks_dir.relative_to(config.root).as_posix()
    image = result.image
    written = Path("the new manifest")  # names the manifest if a section made elsewhere does not fit it
    return Manifest(
        schema=SCHEMA,
        kind="image",
        target=target.name,
        project=Project(name=config.project.name, version=config.project.version, path=project_prefix(config.root)),
        tools=Tools(repro_build=__version__, uv=uv_version(), python=host_platform.python_version()),
        compressor=dict(result.compressor),
        bytecode=read_section(Bytecode, result.bytecode, written, "bytecode"),
        source=Source(
            commit=result.source.commit,
            dirty=result.source.dirty,
            remote=result.source.recorded_remote(),
            label=Label(url=result.source_label.url, origin=result.source_label.origin, note=result.source_label.note),
        ),
        epoch=Epoch(seconds=result.epoch.seconds, source=result.epoch.source),
        config=ConfigRecord(
            pyproject_sha256=_sha256(config.pyproject),
            dockerfile_base_sha256=_sha256(config.root / "Dockerfile.base"),
            target=target_record(target),
        ),
        locks={
            f"{rel}/{name}": _sha256(config.locks_dir / name) for name in sorted({lock.name, BUILD_LOCK, INPUTS_FILE})
        },
        base=read_base({**result.base, "python": result.base_info.to_dict()}, written, "base"),
        wheels=tuple(
            Wheel(
                name=pin.name,
                version=pin.version,
                filename=pin.filename,
                sha256=f"sha256:{pin.sha256}",
                size=pin.size,
                layer=index,
            )
            for pin, index in result.wheels
        ),
        project_wheel=result.project_wheel,
        determinism=result.policy.to_dict(),
        cuda=cuda_record(result),
        files=tuple(read_section(FileRecord, f, written, "files") for f in result.files),
        attestations=tuple(read_section(Attestation, a, written, "attestations") for a in result.attestations),
        outputs=Outputs(
            manifest_digest=str(image.digest),
            manifest_media_type=image.media_type,
            config_digest=str(image.config_digest),
            image_id=image_id or str(image.config_digest),
            repo_tag=result.repo_tag,
            platform=target.platform,
            layers=tuple(
                Layer(
                    digest=r.digest,
                    diff_id=r.diff_id,
                    size=r.size,
                    media_type=r.media_type,
                    holds=r.holds,
                    distributions=r.distributions,
                )
                for r in result.layers
            ),
            env=result.env,
        ),
    )
