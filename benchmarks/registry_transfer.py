"""Push and pull one large blob image through the loopback registry: RegistryClient vs skopeo, same run.

Run from the repository root::

    .venv/bin/python benchmarks/registry_transfer.py [--mib 256] [--rounds 3]

It writes an OCI layout holding one image with an incompressible uncompressed layer of ``--mib`` MiB,
starts the Debian ``docker-registry`` on 127.0.0.1, and times, for each of ``--rounds`` rounds (into
fresh repositories, so nothing is skipped):

* push: ``skopeo copy --preserve-digests oci:… docker://…`` vs ``RegistryClient.put_blob`` (monolithic
  and chunked) + ``put_manifest``;
* pull: ``skopeo copy docker://… oci:…`` vs ``RegistryClient.get_manifest`` + ``get_blob`` into a
  temporary file renamed into place (the way the OCI layer store uses it), digest verified on the fly.

It prints the best time of each and the ratio skopeo / ours (above 1 means we are faster).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.testbed import start_registry

from reprobuild.fsutil import atomic_writer, canonical_json_bytes
from reprobuild.oci.digest import sha256_file
from reprobuild.oci.mediatypes import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST
from reprobuild.oci.registry import CredentialStore, RegistryClient


def write_layout(root: Path, mib: int) -> tuple[Path, bytes]:
    """An OCI layout with one image: a random layer of ``mib`` MiB; returns (layer path, manifest bytes)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layer = root / "layer.tmp"
    with layer.open("wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    layer_digest, layer_size = sha256_file(layer)
    layer_path = blobs / layer_digest.hex
    layer.rename(layer_path)
    config = canonical_json_bytes(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [str(layer_digest)]}}
    )
    config_digest = _put(blobs, config)
    manifest = canonical_json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": str(layer_digest), "size": layer_size}],
        }
    )
    manifest_digest = _put(blobs, manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "bench"},
            }
        ],
    }
    (root / "index.json").write_bytes(canonical_json_bytes(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return layer_path, manifest


def _put(blobs: Path, data: bytes) -> str:
    import hashlib

    hexdigest = hashlib.sha256(data).hexdigest()
    (blobs / hexdigest).write_bytes(data)
    return f"sha256:{hexdigest}"


def opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: path.open("rb")


def timed(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def one_round(skopeo: str, work: Path, layout: Path, manifest: bytes) -> dict[str, float]:
    """Every measurement once, against a registry started for this round only.

    A fresh registry per round keeps the comparison fair: skopeo's blob-info cache remembers which
    repositories on a host hold a blob and mounts it instead of uploading, which a second push to
    the same registry would measure instead of an upload.
    """
    proc = start_registry()
    try:
        host = proc.registry.host
        client = RegistryClient(host, credentials=CredentialStore.anonymous())
        body = json.loads(manifest)
        blobs = [
            (d["digest"], d["size"], layout / "blobs" / "sha256" / d["digest"][7:])
            for d in [body["config"], *body["layers"]]
        ]

        def push_ours(repo: str, chunk_size: int | None) -> None:
            for digest, size, path in blobs:
                client.put_blob(repo, digest, size, opener(path), chunk_size=chunk_size)
            client.put_manifest(repo, "v1", manifest, OCI_MANIFEST)

        def pull_ours() -> None:
            out = work / "pull-ours"
            data, _, _ = client.get_manifest("bench/mono", "v1")
            pulled = json.loads(data)
            for desc in [pulled["config"], *pulled["layers"]]:
                with atomic_writer(out / desc["digest"][7:]) as f:
                    client.get_blob("bench/mono", desc["digest"], f, size=desc["size"])

        skopeo_push = [skopeo, "copy", "-q", "--preserve-digests", "--dest-tls-verify=false"]
        skopeo_pull = [skopeo, "copy", "-q", "--src-tls-verify=false"]
        results = {
            "push skopeo": timed(
                lambda: run([*skopeo_push, f"oci:{layout}:bench", f"docker://{host}/bench/skopeo:v1"])
            ),
            "push ours (monolithic)": timed(lambda: push_ours("bench/mono", None)),
            "push ours (chunked 64 MiB)": timed(lambda: push_ours("bench/chunked", 64 << 20)),
            "pull skopeo": timed(
                lambda: run([*skopeo_pull, f"docker://{host}/bench/mono:v1", f"oci:{work / 'pull-skopeo'}:v1"])
            ),
            "pull ours (verified, temp+rename)": timed(pull_ours),
        }
        shutil.rmtree(work / "pull-skopeo")
        shutil.rmtree(work / "pull-ours")
        return results
    finally:
        proc.stop()


def run(argv: list[str]) -> None:
    subprocess.run(argv, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        print("skopeo is not installed", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="repro-build-bench-"))
    try:
        layout = work / "layout"
        layer_path, manifest = write_layout(layout, args.mib)
        rounds = [one_round(skopeo, work, layout, manifest) for _ in range(args.rounds)]
        best = {name: min(r[name] for r in rounds) for name in rounds[0]}
        size = layer_path.stat().st_size / (1 << 20)
        print(
            f"layer: {size:.0f} MiB, rounds: {args.rounds} (fresh registry each), best of each; {os.cpu_count()} CPUs"
        )
        for name, seconds in best.items():
            print(f"  {name:36s} {seconds:7.2f} s  {size / seconds:8.1f} MiB/s")
        pairs = [
            ("push skopeo/ours (monolithic)", "push skopeo", "push ours (monolithic)"),
            ("push skopeo/ours (chunked)", "push skopeo", "push ours (chunked 64 MiB)"),
            ("pull skopeo/ours", "pull skopeo", "pull ours (verified, temp+rename)"),
        ]
        for label, peer, ours in pairs:
            print(f"  ratio {label:32s} {best[peer] / best[ours]:5.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
