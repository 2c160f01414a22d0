"""Lay out, on any machine, what a CUDA target's image carries for determinism, so ``check.py`` can use it on a GPU.

``python tests/gpu/prepare.py OUT [--project DIR] [--target T]`` writes ``OUT/site/`` (the hook, doctor, facts and
self-test modules, the policy JSON and the .pth: the exact files ``repro-build image`` puts into site-packages,
from :func:`reprobuild.determinism.policy.image_files`) and ``OUT/env.json`` (the image's determinism env,
:attr:`Policy.image_env`). The GPU machine needs only its own torch: the files are standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reprobuild.config import load_config
from reprobuild.determinism.policy import image_files

ROOT = Path(__file__).resolve().parents[2]


def prepare(out: Path, project: Path, target_name: str) -> None:
    config = load_config(project)
    target = config.target(target_name)
    if target.accelerator != "cuda":
        raise SystemExit(f"error: target {target_name!r} of {project} is not a cuda target")
    policy = target.policy
    site = out / "site"
    site.mkdir(parents=True, exist_ok=True)
    for name, data in image_files(policy):
        (site / name).write_bytes(data)
    (out / "env.json").write_text(json.dumps(policy.image_env, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--project", type=Path, default=ROOT / "examples" / "hello-ml")
    p.add_argument("--target", default="cuda")
    args = p.parse_args(argv)
    prepare(args.out, args.project, args.target)
    sys.stdout.write(f"wrote {args.out}/site and {args.out}/env.json\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
