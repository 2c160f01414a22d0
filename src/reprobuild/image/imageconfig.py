"""The image config a target gets: the base's runtime settings, plus env, entrypoint and labels.

Nothing host-specific enters it: ``created`` and every new ``history[].created`` are the epoch, and the
Docker-era keys that describe the machine that built an image (``hostname``, ``container``,
``container_config``, ``docker_version``, ``author``) are dropped, as go-containerregistry's
``mutate.Canonical`` does.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from reprobuild.config import Config, Target
from reprobuild.determinism.policy import Policy

_HOST_KEYS = ("author", "container", "container_config", "docker_version", "hostname")
_HOST_RUNTIME_KEYS = ("Hostname", "Domainname", "Image")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: OCI pre-defined annotation keys (image-spec ``annotations.md``), used as labels too.
SOURCE = "org.opencontainers.image.source"
REVISION = "org.opencontainers.image.revision"
VERSION = "org.opencontainers.image.version"
TITLE = "org.opencontainers.image.title"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


def rfc3339(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_env(base: Sequence[str], updates: Mapping[str, str]) -> list[str]:
    """Base ``Env`` in its order with values replaced, then the new names sorted."""
    names = [e.partition("=")[0] for e in base]
    values = {n: e.partition("=")[2] for n, e in zip(names, base, strict=True)}
    values.update(updates)
    ordered = list(dict.fromkeys(names)) + sorted(k for k in updates if k not in names)
    return [f"{k}={values[k]}" for k in ordered]


def image_env(config: Config, target: Target, policy: Policy, base_env: Sequence[str]) -> list[str]:
    """PATH (with /usr/local/bin, where console scripts go), config env, determinism flags; minus removals."""
    updates: dict[str, str] = {}
    current_path = next((e.partition("=")[2] for e in base_env if e.startswith("PATH=")), DEFAULT_PATH)
    if "/usr/local/bin" not in current_path.split(":"):
        current_path = "/usr/local/bin:" + current_path
    updates["PATH"] = current_path
    updates.update(config.env)
    updates.update(target.env)
    updates.update(policy.image_env)  # the flag sets with the config's overrides applied (XLA_FLAGS merged)
    kept = [e for e in base_env if e.partition("=")[0] not in policy.unset]
    return merge_env(kept, {k: v for k, v in updates.items() if k not in policy.unset})


def build_config(
    base_config: Mapping[str, Any],
    *,
    config: Config,
    target: Target,
    policy: Policy,
    epoch: int,
    labels: Mapping[str, str],
    history: Sequence[str],
) -> dict[str, Any]:
    """The new config object (``rootfs`` is filled in from the layers by the OCI core)."""
    cfg = copy.deepcopy(dict(base_config))
    for key in _HOST_KEYS:
        cfg.pop(key, None)
    runtime: dict[str, Any] = dict(cfg.get("config") or {})
    for key in _HOST_RUNTIME_KEYS:
        runtime.pop(key, None)
    runtime["Env"] = image_env(config, target, policy, runtime.get("Env") or [])
    if config.entrypoint:
        runtime["Entrypoint"] = list(config.entrypoint)
        runtime["Cmd"] = list(config.cmd) if config.cmd else None
    elif config.cmd:
        runtime["Cmd"] = list(config.cmd)
    if runtime.get("Cmd") is None:
        runtime.pop("Cmd", None)
    runtime["WorkingDir"] = config.workdir
    if config.user:
        runtime["User"] = config.user
    runtime["Labels"] = {**(runtime.get("Labels") or {}), **labels}
    cfg["config"] = runtime
    cfg["created"] = rfc3339(epoch)
    cfg["architecture"] = target.arch
    cfg["os"] = target.os
    created = rfc3339(epoch)
    cfg["history"] = [
        *(cfg.get("history") or []),
        *({"created": created, "created_by": f"repro-build: {what}"} for what in history),
    ]
    return cfg
