"""On a machine with an NVIDIA GPU and torch: does a CUDA target's determinism policy hold on the real device?

``python tests/gpu/check.py PREPARED [--json FILE]`` where PREPARED was written by ``prepare.py``. Standard
library and the machine's own torch only. Each check runs in fresh interpreters that start the way a container
of the image does: the site directory (with the .pth) is added before anything imports torch, and the environment
is the image's determinism env.

1. The in-image doctor with ``--selftest`` passes (matmul, conv2d, ``index_add_``, ``scatter_add_`` on CPU and
   CUDA, each run twice in one process and compared bit for bit) and reports the torch switches as applied.
2. The same ops in two separate processes give the same bytes (sha256 of every result).
3. A CUDA op with no deterministic kernel (``torch.histc``) raises instead of silently varying.
4. Control, without the hook and its env: ``index_add_``/``scatter_add_`` on CUDA repeated 50 times. Distinct
   results show the self-test could fail; one result means this device did not show the nondeterminism, and the
   report says so (it is not counted as a pass or a failure).

Exit 0 when 1-3 hold, 1 when one does not, 2 when the machine cannot run the check (no torch or no GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

STARTUP = """
import site, sys
site.addsitedir(sys.argv[1])
"""

DOCTOR = """
import json
import _repro_build_determinism_doctor as d
report = d.doctor(d.load_policy(None), selftest=True)
print(json.dumps(report, sort_keys=True, default=str))
"""

DIGESTS = """
import hashlib, json
import _repro_build_determinism_selftest as s
digests = {name: hashlib.sha256(op()).hexdigest() for name, op in s.default_ops()}
import sys, torch
digests["_state"] = {
    "deterministic": torch.are_deterministic_algorithms_enabled(),
    "meta_path": [type(f).__name__ for f in sys.meta_path],
}
print(json.dumps(digests, sort_keys=True))
"""

NO_KERNEL = """
import json, torch
try:
    torch.histc(torch.arange(1000, dtype=torch.float32, device="cuda"), bins=10)
    print(json.dumps({"raised": None}))
except RuntimeError as e:
    print(json.dumps({"raised": str(e).splitlines()[0][:200]}))
"""

CONTROL = """
import hashlib, json, torch
g = torch.Generator().manual_seed(1234)
index = torch.randint(0, 64, (100_000,), generator=g).cuda()
values = torch.randn(100_000, generator=g).cuda()
out = {}
for name, op in (
    ("index_add_", lambda: torch.zeros(64, device="cuda").index_add_(0, index, values)),
    ("scatter_add_", lambda: torch.zeros(64, device="cuda").scatter_add_(0, index, values)),
):
    seen = {hashlib.sha256(op().cpu().numpy().tobytes()).hexdigest() for _ in range(50)}
    out[name] = len(seen)
print(json.dumps(out, sort_keys=True))
"""

FACTS = """
import json, torch
print(json.dumps({
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "cudnn": torch.backends.cudnn.version(),
    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
}))
"""

#: Variables the image's env sets or that change what the frameworks do; the control runs without them.
POLICY_VARS_PREFIXES = ("CUBLAS_", "OMP_", "MKL_", "OPENBLAS_", "NCCL_", "PYTHONHASHSEED", "REPRO_BUILD_")


def run(code: str, site: Path | None, env: dict[str, str]) -> Any:
    argv = [sys.executable, "-c", (STARTUP if site else "") + code]
    if site:
        argv.append(str(site))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("prepared", type=Path)
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = p.parse_args(argv)
    site = (args.prepared / "site").resolve()
    image_env = json.loads((args.prepared / "env.json").read_text(encoding="utf-8"))
    bare = {k: v for k, v in os.environ.items() if not k.startswith(POLICY_VARS_PREFIXES)}
    env = {**bare, **image_env}

    try:
        facts = run(FACTS, None, bare)
    except RuntimeError as e:
        sys.stderr.write(f"error: torch does not run here: {e}\n")
        return 2
    if not facts["gpu"]:
        sys.stderr.write("error: torch sees no GPU here\n")
        return 2

    report: dict[str, Any] = {"facts": facts, "image_env": image_env}
    doctor = run(DOCTOR, site, env)
    report["doctor"] = {key: doctor.get(key) for key in ("ok", "problems", "hook", "frameworks", "selftest")}
    first, second = run(DIGESTS, site, env), run(DIGESTS, site, env)
    report["state"] = first.pop("_state"), second.pop("_state")
    report["cross_process"] = {name: first[name] == second.get(name) for name in first}
    report["no_deterministic_kernel"] = run(NO_KERNEL, site, env)
    report["control_distinct_results_of_50"] = run(CONTROL, None, bare)

    checks = {
        "doctor --selftest passes": bool(doctor["ok"]),
        "cuda ops were tested": any("[cuda]" in name for name in first),
        "same bytes in two processes": all(report["cross_process"].values()),
        "op without a deterministic kernel raises": report["no_deterministic_kernel"]["raised"] is not None,
    }
    report["checks"] = checks
    text = json.dumps(report, indent=2, sort_keys=True, default=str)
    sys.stdout.write(text + "\n")
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
