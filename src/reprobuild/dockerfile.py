"""The equivalent Dockerfile of a target (``templates/Dockerfile.tmpl``) and the build context it expects.

The Dockerfile is what ``repro-build image`` would assemble, written the way a person would write it:
same base, the wheels of ``repro-locks/<target>.txt`` installed with ``uv pip install --require-hashes
--no-deps`` (uv, because the bases repro-build targets, the embedded Debian one included, have no pip),
the project wheel, the determinism hook files and the same env/entrypoint. It is the peer in the
benchmarks and a starting point for people who want to own a Dockerfile; it is *not* reproducible,
because ``docker build`` RUNs an installer and stamps times (two `docker build`s from a pruned cache
give different image IDs).

Rendering is a pure function of the configuration: sorted env and labels, fixed instruction order, no
host paths or times. :func:`prepare_context` lays out the build context next to it, checking every wheel
against the lock before it is copied in.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from reprobuild.config import Config, Target
from reprobuild.determinism.policy import image_files
from reprobuild.errors import ConfigError, DigestMismatchError, DockerfileError, LockError
from reprobuild.fsutil import atomic_write_text, make_output_dir, publish_dir
from reprobuild.image import imageconfig, ocilabels
from reprobuild.lock import target_lock_path
from reprobuild.lock.cuda import locked_cuda_policy
from reprobuild.lock.reader import LockedPackage, read_lock
from reprobuild.oci.digest import sha256_file
from reprobuild.templates import render
from reprobuild.uvbin import find_uv

TEMPLATE = "Dockerfile.tmpl"
#: Where the RUN steps bind-mount parts of the context. Under /tmp so that nothing a base keeps there
#: is shadowed; the mounts are never part of a layer.
MOUNT = "/tmp/repro-build"
_CHUNK = 1 << 20


def image_env(config: Config, target: Target) -> dict[str, str]:
    """The env the Dockerfile sets, sorted by name: what ``repro-build image`` puts in the config.

    Derived from :func:`reprobuild.image.imageconfig.image_env` (determinism flags, then
    ``[tool.repro-build].env``, then the target's ``env``; a later source wins). ``PATH`` is left to the
    base unless the configuration sets it: BuildKit, like repro-build, gives a base without ``PATH`` the
    default one, and a base's own ``PATH`` is kept by both.
    """
    policy = locked_cuda_policy(config, target)
    entries = (e.partition("=") for e in imageconfig.image_env(config, target, policy, []))
    explicit = {**config.env, **target.env}
    env = {name: value for name, _, value in entries if name != "PATH" or "PATH" in explicit}
    return dict(sorted(env.items()))


def _quoted(value: str, what: str) -> str:
    """A double-quoted Dockerfile word that BuildKit reads back as ``value`` (no variable expansion)."""
    if "\n" in value or "\r" in value:
        raise ConfigError(f"{what} contains a line break, which a Dockerfile cannot express", hint="remove it")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _json_array(items: Sequence[str]) -> str:
    import json

    return json.dumps(list(items))


def _plain(value: str, what: str) -> str:
    """A value for an instruction that takes the rest of the line (WORKDIR, USER)."""
    bad = sorted({c for c in value if c in '\n\r\\"$'})
    if bad or not value.strip():
        raise ConfigError(
            f"{what} {value!r} cannot be written into a Dockerfile as it is",
            hint="use a value without line breaks, backslashes, quotes or `$`",
        )
    return value


def _key_value_block(instruction: str, items: Mapping[str, str]) -> str:
    """``ENV``/``LABEL`` with one ``key="value"`` per line (continuations), in the order given."""
    lines = [f"{k}={v}" for k, v in items.items()]
    pad = " " * (len(instruction) + 1)
    return f"{instruction} " + f" \\\n{pad}".join(lines)


def base_for(target: Target, base_image: str | None) -> str:
    """The ``FROM`` operand: ``base_image`` when given, else the target's registry base by digest."""
    if base_image is not None:
        if not base_image or any(c.isspace() for c in base_image) or "$" in base_image:
            raise ConfigError(f"--base-image {base_image!r} is not an image reference")
        return base_image
    base = target.base
    if base.kind == "registry" and base.reference is not None and base.reference.pinned:
        return str(base.reference)
    raise ConfigError(
        f"target {target.name!r}: its base {base.text!r} ({base.kind}) has no registry reference a Dockerfile "
        "could pull by digest",
        hint="load that base into the engine (e.g. `docker load -i <archive>`) and pass its name with "
        "`--base-image NAME`",
    )


def _labels(config: Config, target: Target) -> dict[str, str]:
    """The labels ``repro-build image`` sets; source and revision come from build args at build time."""
    labels = {
        imageconfig.BASE_NAME: _quoted(target.base.text, "base"),
        imageconfig.REVISION: '"${REVISION}"',
        imageconfig.SOURCE: '"${SOURCE}"',
        imageconfig.TITLE: _quoted(config.project.name, "project name"),
    }
    if config.project.version:
        labels[imageconfig.VERSION] = _quoted(config.project.version, "project version")
    # The project's own facts, as `image` sets them (`created` comes from the builder's SOURCE_DATE_EPOCH).
    project = config.project
    for key, value, what in (
        (ocilabels.DESCRIPTION, project.description, "project description"),
        (ocilabels.LICENSES, ocilabels.spdx_expression(project.license), "project license"),
        (ocilabels.URL, ocilabels.project_url(project.urls, ("homepage",)), "project Homepage URL"),
        (ocilabels.DOCUMENTATION, ocilabels.project_url(project.urls, ("documentation", "docs")), "docs URL"),
    ):
        if value:
            labels[key] = _quoted(value, what)
    return dict(sorted(labels.items()))


def _runtime(config: Config) -> str:
    lines = [f"WORKDIR {_plain(config.workdir, '`tool.repro-build.workdir`')}"]
    if config.user:
        lines.append(f"USER {_plain(config.user, '`tool.repro-build.user`')}")
    if config.entrypoint:
        lines.append(f"ENTRYPOINT {_json_array(config.entrypoint)}")
    if config.cmd:
        lines.append(f"CMD {_json_array(config.cmd)}")
    return "\n".join(lines)


def render_dockerfile(config: Config, target_name: str, *, base_image: str | None = None) -> str:
    """The equivalent Dockerfile of ``target_name`` (deterministic: same config, same text)."""
    target = config.target(target_name)
    if target.multi_platform:
        raise DockerfileError(
            f"target {target.name!r} is built for several platforms ({', '.join(target.platforms)}); "
            "its equivalent Dockerfile is not written",
            hint="`repro-build image` builds it (one image per platform and an index); `dockerfile` covers "
            "one-platform targets",
        )
    env = image_env(config, target)
    env_block = _key_value_block("ENV", {k: _quoted(v, f"env {k}") for k, v in env.items()}) if env else "# (no env)"
    lock_line = f"locks/{target.name}.txt"
    values = {
        "target": target.name,
        "project": config.project.name,
        "lock_pad": " " * max(1, 27 - len(lock_line)),
        "from": base_for(target, base_image),
        "mount": MOUNT,
        "python": target.python,
        "bytecode": target.bytecode,
        "compile_bytecode": "1" if target.bytecode == "unchecked-hash" else "0",
        "python_minor": ".".join(target.python.split(".")[:2]),
        "flag_sets": ", ".join(target.flags) or "none",
        "env": env_block,
        "labels": _key_value_block("LABEL", _labels(config, target)),
        "runtime": _runtime(config),
    }
    return render(TEMPLATE, values)


# ---------------------------------------------------------------------------------------------
# The build context


@dataclass(frozen=True)
class ContextFile:
    """One file placed in the build context, with its sha256 (hex)."""

    path: str  # relative to the context, POSIX
    sha256: str


def _copy_hashed(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` and return the sha256 of the bytes written (one pass)."""
    h = hashlib.sha256()
    with src.open("rb") as fin, dst.open("wb") as fout:
        for chunk in iter(lambda: fin.read(_CHUNK), b""):
            h.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return h.hexdigest()


def _wheel_identity(path: Path, what: str) -> tuple[NormalizedName, Version]:
    try:
        name, version, _build, _tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename as e:
        raise DockerfileError(f"{what} {path.name!r} is not a wheel file name: {e}") from e
    return name, version


def _match_lock(
    config: Config,
    target: str,
    *,
    lock_path: Path,
    locked: Mapping[NormalizedName, LockedPackage],
    wheels: Sequence[Path],
    project_wheel: Path,
) -> dict[NormalizedName, Path]:
    """Pair every locked distribution with exactly one of ``wheels`` by name and version (hashes come later)."""
    by_name: dict[NormalizedName, Path] = {}
    for wheel in wheels:
        name, version = _wheel_identity(wheel, "wheel")
        pin = locked.get(name)
        if pin is None:
            raise LockError(
                f"{wheel.name}: {name} is not pinned by {lock_path.name}",
                hint=f"pass only the wheels of `repro-locks/{target}.txt`, or run `repro-build lock`",
            )
        if Version(pin.version) != version:
            raise LockError(f"{wheel.name}: {lock_path.name} pins {name}=={pin.version}, not {version}")
        if name in by_name:
            raise DockerfileError(f"two wheels for {name}: {by_name[name].name} and {wheel.name}")
        by_name[name] = wheel
    missing = sorted(set(locked) - set(by_name))
    if missing:
        raise LockError(
            f"no wheel given for {len(missing)} distribution(s) pinned by {lock_path.name}: {', '.join(missing)}",
            hint="pass every wheel the lock pins for this target",
        )
    project_name, _ = _wheel_identity(project_wheel, "project wheel")
    if project_name != canonicalize_name(config.project.name):
        raise DockerfileError(
            f"project wheel {project_wheel.name!r} is not a wheel of {config.project.name!r}",
            hint="pass the wheel `repro-build wheel` built for this project",
        )
    return by_name


def prepare_context(
    config: Config,
    target: str,
    wheels: Sequence[Path],
    project_wheel: Path,
    dest: Path,
    *,
    base_image: str | None = None,
) -> list[ContextFile]:
    """Lay out the build context of the equivalent Dockerfile of ``target`` in ``dest`` (a new directory).

    ``wheels`` must be exactly the wheel files ``repro-locks/<target>.txt`` pins for the target (one per locked
    distribution, each with a sha256 the lock allows); ``project_wheel`` is the project's wheel. Every
    file is hashed as it is copied and checked before the context becomes visible: on any error
    ``dest`` is not created. Returns the files written, sorted by path. See ``templates/Dockerfile.tmpl``
    for the layout.
    """
    spec = config.target(target)
    if dest.exists():
        raise DockerfileError(f"build context {dest} already exists", hint="remove it or choose another directory")
    dockerfile = render_dockerfile(config, target, base_image=base_image)
    lock_path = target_lock_path(config, target)
    locked = read_lock(lock_path)
    by_name = _match_lock(
        config, target, lock_path=lock_path, locked=locked, wheels=wheels, project_wheel=project_wheel
    )

    make_output_dir(dest.parent)
    written: list[ContextFile] = []
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        for sub in ("tools", "locks", "wheels", "project", "app"):
            (tmp / sub).mkdir()

        def put_bytes(rel: str, data: bytes, mode: int = 0o644) -> None:
            path = tmp / rel
            path.write_bytes(data)
            path.chmod(mode)
            written.append(ContextFile(rel, hashlib.sha256(data).hexdigest()))

        put_bytes("Dockerfile", dockerfile.encode("utf-8"))
        put_bytes(f"locks/{target}.txt", lock_path.read_bytes())
        uv = Path(find_uv())
        digest = _copy_hashed(uv, tmp / "tools" / "uv")
        (tmp / "tools" / "uv").chmod(0o755)
        written.append(ContextFile("tools/uv", digest))
        for name in sorted(by_name):
            wheel = by_name[name]
            rel = f"wheels/{wheel.name}"
            digest = _copy_hashed(wheel, tmp / rel)
            if digest not in locked[name].hashes:
                raise DigestMismatchError(
                    f"{wheel}: sha256 {digest} is not one of the hashes {lock_path.name} allows for {name}",
                    hint="the file is not the locked wheel; fetch it again (repro-build verifies by hash)",
                )
            written.append(ContextFile(rel, digest))
        rel = f"project/{project_wheel.name}"
        digest = _copy_hashed(project_wheel, tmp / rel)
        written.append(ContextFile(rel, digest))
        requirement = f"{MOUNT}/{rel} --hash=sha256:{digest}\n"
        put_bytes("project/requirements.txt", requirement.encode("utf-8"))
        policy = locked_cuda_policy(config, spec)
        for fname, data in image_files(policy):
            put_bytes(f"app/{fname}", data)
        tmp.chmod(0o755)
        publish_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(written, key=lambda f: f.path)


def _sha256_file(path: Path) -> str:
    return sha256_file(path)[0].hex


def wheels_from_dir(config: Config, target: str, directory: Path) -> list[Path]:
    """The wheel files under ``directory`` (searched recursively) that ``repro-locks/<target>.txt`` pins for ``target``.

    A file is taken when its name and version are locked, its tags fit the target (the most preferred
    tag wins, as an installer ranks them) and its sha256 is one the lock allows. For repro-build's own
    cache, whose blobs have no file names, see :func:`wheels_from_cache`.
    """
    from reprobuild.image.wheels import target_tags

    spec = config.target(target)
    lock_path = target_lock_path(config, target)
    locked = read_lock(lock_path)
    rank = {tag: i for i, tag in enumerate(target_tags(spec))}
    best: dict[str, tuple[int, str, Path]] = {}
    for path in sorted(directory.rglob("*.whl")):
        try:
            name, version, _build, tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        pin = locked.get(name)
        if pin is None or Version(pin.version) != version:
            continue
        score = min((rank[t] for t in tags if t in rank), default=None)
        if score is None or (name in best and best[name][:2] <= (score, path.name)):
            continue
        if _sha256_file(path) in pin.hashes:
            best[name] = (score, path.name, path)
    missing = sorted(set(locked) - set(best))
    if missing:
        raise LockError(
            f"{directory} holds no wheel that {lock_path.name} allows for: {', '.join(missing)}",
            hint="put the locked wheel files there, or pass repro-build's cache directory",
        )
    return [best[name][2] for name in sorted(best)]


def is_cache(directory: Path) -> bool:
    """True when ``directory`` is a repro-build cache (it has the blob store ``blobs/sha256/``)."""
    return (directory / "blobs" / "sha256").is_dir()


def wheels_from_cache(config: Config, target: str, cache: Path, staging: Path) -> list[Path]:
    """The wheels ``repro-locks/<target>.txt`` pins, taken from the blob store of the repro-build cache
    ``cache`` and linked into ``staging`` under their file names.

    A blob has no name: the names and sha256 come from the wheel list ``repro-build lock`` recorded for
    the lock (:func:`reprobuild.image.wheelsources.recorded_wheels`), and every staged file is hashed
    against it (:class:`reprobuild.image.wheels.WheelCache`).
    """
    from reprobuild.image.wheels import WheelCache
    from reprobuild.image.wheelsources import recorded_wheels

    lock_path = target_lock_path(config, target)
    recorded = recorded_wheels(config, config.target(target), lock_path)
    if recorded is None:
        raise LockError(
            f"{lock_path.name} has no recorded wheel list, so its wheels cannot be found in the cache {cache}",
            hint="run `repro-build lock` (it records which wheel file each pin takes), or pass a folder of wheels",
        )
    store = WheelCache(cache, staging=staging)
    found = [(w.pin, store.get(w.pin)) for w in recorded]
    missing = [pin.filename for pin, path in found if path is None]
    if missing:
        raise LockError(
            f"the cache {cache} holds no verified copy of: {', '.join(missing)}",
            hint="run `repro-build image` once to fill the cache, or pass a folder of wheels",
        )
    return [path for _, path in found if path is not None]


def write_dockerfile(config: Config, target: str, path: Path, *, base_image: str | None = None) -> None:
    """Render the equivalent Dockerfile of ``target`` into ``path`` atomically."""
    atomic_write_text(path, render_dockerfile(config, target, base_image=base_image))
