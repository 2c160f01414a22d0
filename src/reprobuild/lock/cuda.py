"""The CUDA facts of each target's lock: the policy ``dockerfile`` writes, and ``lock``'s warnings."""

from __future__ import annotations

from reprobuild.config import Config, Target
from reprobuild.determinism.cuda import cuda_facts
from reprobuild.determinism.cudapolicy import with_cuda
from reprobuild.determinism.policy import Policy
from reprobuild.lock.reader import read_lock


def locked_cuda_policy(config: Config, target: Target) -> Policy:
    """The target's policy with ``NVIDIA_REQUIRE_CUDA`` from its lock (what ``image`` sets, for ``dockerfile``)."""
    policy = target.policy
    path = config.locks_dir / target.lock_name
    if not policy.cuda or not path.is_file():
        return policy
    return with_cuda(policy, read_lock(path).values(), {}, lambda s: None)


def lock_warnings(config: Config) -> list[str]:
    """Warnings about the CUDA wheels of each target's lock (mixed majors; the base is checked by ``image``)."""
    out = []
    for target in config.lock_targets():
        name = target.lock_name.removesuffix(".txt")
        path = config.locks_dir / target.lock_name
        if not path.is_file():
            continue
        facts = cuda_facts(((p.name, p.version) for p in read_lock(path).values()), [])
        out += [f"target {name}: {w}" for w in (facts.warnings() if facts else [])]
    return out
