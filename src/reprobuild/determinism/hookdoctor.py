"""The determinism doctor (installed in images as ``_repro_build_determinism_doctor``).

``python -m _repro_build_determinism_doctor [--json] [--policy FILE] [--selftest]`` prints which determinism
env flags are in effect (marking the ones the config overrode), whether the hook is installed, which runtime
switches are on for the frameworks present, the seeds, thread counts, CPU instruction set and GPU, and what
is missing; with ``--selftest`` it also runs small fixed computations twice and compares them bit for bit.
Exit 0 when the image's policy is met (and the self-test passes), 1 when not, 2 on error. The host-side
``repro-build doctor`` runs the same functions. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys

try:  # in an image, the hook sits beside this file under its in-image name
    import _repro_build_determinism as _hook  # type: ignore[import-not-found, unused-ignore]
    import _repro_build_determinism_facts as _facts  # type: ignore[import-not-found, unused-ignore]
    import _repro_build_determinism_selftest as _selftest  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # in repro-build itself
    from reprobuild.determinism import hook as _hook
    from reprobuild.determinism import hookfacts as _facts
    from reprobuild.determinism import selftest as _selftest

MODULE = _hook.MODULE
ENV_SWITCH = _hook.ENV_SWITCH
WATCHED = _hook.WATCHED
POLICY_FILE = "_repro_build_determinism.json"
mode = _hook.mode


def load_policy(path: str | None = None) -> dict[str, object]:
    """The image's policy: ``{"sets": [...], "env": {NAME: value}, "runtime": [...]}``."""
    if path is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), POLICY_FILE)
    with open(path, encoding="utf-8") as f:
        policy: dict[str, object] = json.load(f)
    policy["path"] = path
    return policy


def _framework_state(name: str, switches: dict[str, object], threads: str | None) -> dict[str, object]:
    import importlib
    import importlib.util

    if importlib.util.find_spec(name) is None:
        return {"present": False}
    module = importlib.import_module(name)
    state: dict[str, object] = {"present": True, "version": getattr(module, "__version__", "?")}
    if name == "torch":
        deterministic = bool(switches.get("deterministic_algorithms", True))
        state["use_deterministic_algorithms"] = bool(module.are_deterministic_algorithms_enabled())
        state["cudnn.deterministic"] = bool(module.backends.cudnn.deterministic)
        state["cudnn.benchmark"] = bool(module.backends.cudnn.benchmark)
        state["threads"] = int(module.get_num_threads())
        state["ok"] = (
            state["use_deterministic_algorithms"] == deterministic
            and state["cudnn.deterministic"] == deterministic
            and state["cudnn.benchmark"] == bool(switches.get("cudnn_benchmark", False))
            and (threads is None or not threads.isdigit() or state["threads"] == int(threads))
        )
    elif name == "tensorflow":
        try:
            from tensorflow.python.framework import config as tf_config  # type: ignore[import-untyped]

            enabled = bool(tf_config.is_op_determinism_enabled())
        except Exception:
            enabled = False
        state["op_determinism"] = enabled
        state["ok"] = enabled
    return state


def _seed_state(policy: dict[str, object], env: dict[str, str], problems: list[str]) -> dict[str, object]:
    """The seed the policy sets, the one in effect, and whether the modules imported here were seeded with it."""
    want = policy.get("seed")
    state: dict[str, object] = {"policy": want, "env": env.get(_hook.SEED_ENV)}
    text = env.get(_hook.SEED_ENV)
    effective: int | None
    if text is None:
        effective = want if isinstance(want, int) else None
    elif text.strip().lower() in ("off", "none", ""):
        effective = None
    elif text.strip().isdigit() and int(text) < 2**32:
        effective = int(text)
    else:
        problems.append(f"env {_hook.SEED_ENV}={text!r} is not a seed (an integer from 0 to 2**32-1, or off)")
        return state
    state["effective"] = effective
    if want is not None and effective is None:
        problems.append(f"seeding is disabled by {_hook.SEED_ENV}={text!r} (the policy seeds with {want})")
    if effective is None:
        return state
    # A fresh generator seeded with `effective` must be in the very state the hook left the global one in
    # (nothing in this process has drawn from them yet).
    import importlib.util
    import random

    checks = {"random": random.getstate() == random.Random(effective).getstate()}
    if importlib.util.find_spec("numpy") is not None:
        import numpy  # type: ignore[import-not-found, unused-ignore]

        mine, fresh = numpy.random.get_state(), numpy.random.RandomState(effective).get_state()
        checks["numpy.random"] = bool((mine[1] == fresh[1]).all()) and mine[2] == fresh[2]
    torch = sys.modules.get("torch")
    if torch is not None:
        checks["torch"] = int(torch.initial_seed()) == effective
    state["seeded"] = checks
    for name, ok in checks.items():
        if not ok:
            problems.append(f"{name} is not seeded with {effective}")
    return state


def doctor(
    policy: dict[str, object], environ: dict[str, str] | None = None, *, selftest: bool = False
) -> dict[str, object]:
    """Check the running interpreter against ``policy``; returns a report with ``ok`` and ``problems``."""
    env = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    env_report: dict[str, dict[str, object]] = {}
    wanted_env = policy.get("env", {})
    assert isinstance(wanted_env, dict)
    overrides = policy.get("overrides", {})
    assert isinstance(overrides, dict)
    for key in sorted(wanted_env):
        want = wanted_env[key]
        have = env.get(key)
        env_report[key] = {"want": want, "have": have, "ok": have == want, "override": key in overrides}
        if have is None:
            problems.append(f"env {key} is not set (want {want!r})")
        elif have != want:
            problems.append(f"env {key}={have!r} (want {want!r})")
    # Under `python -m`, this file runs as __main__; what the hook did lives in the imported copy.
    applied = getattr(sys.modules.get(MODULE), "APPLIED", _hook.APPLIED)
    hook_on = any(_hook.is_ours(f) for f in sys.meta_path) or bool(applied)
    current_mode = mode()
    frameworks: dict[str, dict[str, object]] = {}
    runtime = policy.get("runtime", list(WATCHED))
    assert isinstance(runtime, list)
    switches = policy.get("switches", {})
    assert isinstance(switches, dict)
    for name in runtime:
        state = _framework_state(str(name), switches, env.get("OMP_NUM_THREADS") if "torch" in runtime else None)
        frameworks[str(name)] = state
        if state.get("present") and not state.get("ok"):
            problems.append(f"{name}: runtime determinism switches are not as configured ({state})")
    seeds = _seed_state(policy, env, problems) if current_mode != "off" else {"policy": policy.get("seed")}
    if current_mode == "off":
        problems.append(f"the hook is disabled by {ENV_SWITCH}={os.environ.get(ENV_SWITCH)!r}")
    elif not hook_on and (any(s.get("present") for s in frameworks.values()) or policy.get("seed") is not None):
        problems.append("the determinism hook is not installed in this interpreter")
    test = _selftest.run() if selftest else None
    if test is not None:
        problems.extend(f"self-test: {name} gave {test['ops'][name]}" for name in test["failed"])
    return {
        "ok": not problems,
        "problems": problems,
        "policy": {k: v for k, v in policy.items() if k != "path"},
        "policy_path": policy.get("path"),
        "env": env_report,
        "hook": {"installed": hook_on, "mode": current_mode, "applied": applied},
        "frameworks": frameworks,
        "seed": seeds,
        "switches": switches,
        "facts": _facts.collect(),
        "selftest": test,
        "python": sys.version.split()[0],
    }


def render(report: dict[str, object]) -> str:
    """The doctor report as text lines (no colour)."""
    lines = []
    policy = report["policy"]
    assert isinstance(policy, dict)
    lines.append(f"policy: sets {', '.join(policy.get('sets', [])) or '(none)'}, from {report.get('policy_path')}")
    env = report["env"]
    assert isinstance(env, dict)
    for key, row in env.items():
        mark = "ok     " if row["ok"] else "MISSING" if row["have"] is None else "WRONG  "
        note = ", overridden by the config" if row.get("override") else ""
        lines.append(f"{mark} env {key}={row['have'] if row['have'] is not None else ''} (want {row['want']}{note})")
    for key in policy.get("unset", []):
        lines.append(f"info    env {key} removed by the config")
    hook = report["hook"]
    assert isinstance(hook, dict)
    lines.append(
        f"{'ok     ' if hook['installed'] else 'off    '} hook installed={hook['installed']} mode={hook['mode']}"
    )
    frameworks = report["frameworks"]
    assert isinstance(frameworks, dict)
    for name, state in frameworks.items():
        if not state.get("present"):
            lines.append(f"skip    {name}: not installed")
            continue
        details = ", ".join(f"{k}={v}" for k, v in state.items() if k not in ("present", "ok", "version"))
        lines.append(f"{'ok     ' if state.get('ok') else 'OFF    '} {name} {state.get('version')}: {details}")
    seed = report.get("seed")
    if isinstance(seed, dict):
        if seed.get("effective", seed.get("policy")) is None:
            lines.append("info    seed: none (`seed` not set, or off)")
        else:
            seeded = seed.get("seeded") or {}
            assert isinstance(seeded, dict)
            checked = ", ".join(f"{k} {'ok' if v else 'NOT seeded'}" for k, v in seeded.items())
            mark = "ok     " if all(seeded.values()) else "WRONG  "
            lines.append(f"{mark} seed {seed.get('effective')} (policy {seed.get('policy')}): {checked}")
    facts = report.get("facts")
    if isinstance(facts, dict):
        lines.extend(_facts.render(facts))
    test = report.get("selftest")
    if isinstance(test, dict):
        ops = test["ops"]
        assert isinstance(ops, dict)
        for name, result in ops.items():
            lines.append(f"{'ok     ' if result == 'same' else 'FAIL   '} self-test {name}: {result}")
        if not ops:
            lines.append("skip    self-test: no numpy or torch installed")
    problems = report["problems"]
    assert isinstance(problems, list)
    lines.append("policy met" if report["ok"] else f"policy NOT met: {len(problems)} problem(s)")
    lines.extend(f"  - {p}" for p in problems)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m _repro_build_determinism_doctor [--json] [--policy FILE] [--selftest]``: 0 met, 1 not, 2 error."""

    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    selftest = "--selftest" in args
    policy_path = None
    if "--policy" in args:
        i = args.index("--policy")
        if i + 1 >= len(args):
            sys.stderr.write("error: --policy needs a file\n")
            return 2
        policy_path = args[i + 1]
    try:
        policy = load_policy(policy_path)
    except (OSError, ValueError) as e:
        sys.stderr.write(f"error: cannot read the determinism policy: {e}\n")
        return 2
    report = doctor(policy, selftest=selftest)
    if as_json:
        sys.stdout.write(json.dumps(report, sort_keys=True, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(render(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
