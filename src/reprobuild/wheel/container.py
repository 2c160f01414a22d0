"""``repro-build wheel --in-container``: each ``uv build`` step runs inside the builder image.

Why: a compiled wheel equals another one only when the toolchain (compiler, libc headers, Python
headers) is pinned too; the builder image, pinned by digest, pins it. The default whenever the project
names a builder (``[tool.repro-build] builder = "<ref>@sha256:…"`` or a ``Dockerfile.base`` stage) or
``Dockerfile.base`` has a ``builder`` stage.

How one step runs (through the docker SDK, never a shell ``docker run``):

* the build dependencies are downloaded **on the host** once per build: ``pip download --no-deps
  --require-hashes -r repro-locks/build.txt`` (pip checks every file against its hash), into a wheelhouse
  mounted read-only at ``/wheels``; inside, uv installs them with ``--offline --no-index
  --find-links /wheels`` and checks the same hashes again (``--require-hashes``);
* the host's uv binary (:func:`reprobuild.uvbin.find_uv`) is mounted read-only at ``/opt/uv/uv``,
  so the container needs no network and no uv of its own; ``repro-locks/`` is mounted read-only at ``/locks``;
* the step's input directory is mounted read-only at ``/src``, copied to ``/build/work`` (backends
  such as setuptools write into the source tree), and built into ``/build/out``;
* ``--network none``; user ``65532:65532`` (the distroless "nonroot" id: no host user leaks into the
  build, and the backend cannot write outside ``/build``); working directory ``/build``;
* the environment is :func:`reprobuild.wheel.build.normalised_env` for the fixed build root
  ``/build`` (with the caller's ``CFLAGS``/``CPPFLAGS``/… kept, as on the host) plus ``PATH``,
  ``HOME`` and uv's cache inside ``/build``.

The builder is resolved to an image in the engine by its digest reference (pulled when absent, which
lets the engine verify the digest); the reference and the digest are recorded with the wheel.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprobuild.config import Config
from reprobuild.epoch import Epoch
from reprobuild.errors import ConfigError, EngineError, ToolError
from reprobuild.oci.reference import parse_reference
from reprobuild.uvbin import find_uv
from reprobuild.wheel.buildenv import BUILD_UMASK, Step, backend_failure, normalised_env, user_flags
from reprobuild.wheel.outputs import Builder

#: The fixed uid:gid of the build (distroless "nonroot"); see the module docstring.
BUILD_USER = "65532:65532"
BUILD_ROOT = "/build"
#: A PATH that every Debian-like builder image has.
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILDER_STAGE = "builder"


def builder_reference(config: Config) -> str | None:
    """The builder image reference the project names, or None (see the module docstring)."""
    dockerfile = config.dockerfile_base
    name = config.builder
    if name is None and dockerfile is not None and dockerfile.stage(BUILDER_STAGE) is not None:
        name = BUILDER_STAGE
    if name is None:
        return None
    if dockerfile is not None and dockerfile.stage(name) is not None:
        stage = dockerfile.resolved(name)
        if stage.reference is None:
            raise ConfigError(f"{dockerfile.path.name}: stage {name!r} names no image to build in")
        return str(stage.reference)
    return name


def builder_configured(config: Config) -> bool:
    return builder_reference(config) is not None


def _engine() -> Any:
    from reprobuild.oci.engine import connect

    return connect()


def resolve_builder(client: Any, text: str) -> tuple[Builder, str]:
    """The builder as recorded, and the engine's image ID to run; pulls by digest when absent."""
    ref = parse_reference(text, origin="the builder image")
    if not ref.pinned or ref.digest is None:
        raise ConfigError(
            f"the builder image {text!r} is not pinned by digest",
            hint="name it as `<image>@sha256:<64 hex>` so the toolchain cannot change under the same name",
        )
    import docker.errors

    from reprobuild.oci.engine import ENGINE_ERRORS

    try:
        image = client.images.get(text)
    except docker.errors.ImageNotFound:
        try:
            image = client.images.pull(text)
        except ENGINE_ERRORS as e:
            raise EngineError(
                f"the builder image {text} is not in the Docker engine and cannot be pulled: {e}",
                hint="`docker pull` it by digest, or `docker load` it, then run again",
            ) from e
    except ENGINE_ERRORS as e:
        raise EngineError(f"looking up the builder image {text}: {e}") from e
    repo_digests = [d.split("@", 1)[1] for d in image.attrs.get("RepoDigests") or [] if "@" in d]
    if ref.digest not in repo_digests:
        raise EngineError(
            f"the engine's image for {text} does not carry that digest (it has {repo_digests or 'none'})",
            hint="remove the local image and pull it again by digest",
        )
    return Builder(image=text, digest=ref.digest), str(image.id)


def download_build_deps(lock: Path, python: str, dest: Path) -> None:
    """``pip download`` every file of ``lock`` into ``dest``; pip verifies each one against its hash."""
    pip = [sys.executable, "-m", "pip"] if _has_pip(sys.executable) else [shutil.which("pip") or ""]
    if not pip[0]:
        raise ToolError(
            "pip is needed to fetch the hashed build dependencies for the builder container, and none was found",
            hint="install pip (`python -m ensurepip`), or build on the host with `--no-container`",
        )
    cmd = [*pip, "download", "--no-deps", "--require-hashes", "--python-version", python]
    cmd += ["--disable-pip-version-check", "--quiet", "-r", str(lock), "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolError(
            f"downloading the build dependencies of {lock} failed:\n{(proc.stderr or proc.stdout).strip()[-3000:]}",
            hint=f"run `{' '.join(cmd)}` to see the full output",
        )


def _has_pip(python: str) -> bool:
    return subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False).returncode == 0


_SCRIPT = """\
set -eu
umask {umask:03o}
mkdir -p /build/work /build/out /build/tmp /build/home
cp -R -p /src /build/work/{name}
/opt/uv/uv build /build/work/{name} --{step} --out-dir /build/out \\
  --build-constraints /locks/{lock} --require-hashes --offline --no-index --find-links /wheels \\
  --python {python} --no-config --no-create-gitignore --no-progress --color never
"""


@dataclass
class ContainerRunner:
    """Runs ``uv build`` steps in the builder image (see the module docstring)."""

    client: Any
    image_id: str
    recorded: Builder
    lock: Path
    python: str
    epoch: Epoch
    wheelhouse: Path
    uv: str = field(default_factory=find_uv)
    caller_flags: Mapping[str, str] = field(default_factory=dict)

    def build(self, step: Step, source: Path, out_dir: Path, build_root: Path, *, deps_cached: bool = False) -> None:
        # A fresh, world-writable directory per step, mounted at /build: the fixed uid writes there.
        mount = build_root / f"container-{step}"
        mount.mkdir()
        mount.chmod(0o777)
        env = {
            **normalised_env(BUILD_ROOT, self.epoch, self.caller_flags),
            "PATH": CONTAINER_PATH,
            "HOME": f"{BUILD_ROOT}/home",
            "UV_CACHE_DIR": f"{BUILD_ROOT}/uv-cache",
            "UV_PYTHON_DOWNLOADS": "never",
        }
        script = _SCRIPT.format(umask=BUILD_UMASK, name=source.name, step=step, lock=self.lock.name, python=self.python)
        # Let the host remove what the fixed uid created, whatever happened.
        trap = "trap 'rc=$?; find /build -mindepth 1 -user 65532 -exec chmod a+rwX {} + 2>/dev/null; exit $rc' EXIT"
        command = ["/bin/sh", "-c", f"{trap}\n{script}"]
        volumes = {
            str(source): {"bind": "/src", "mode": "ro"},
            str(mount): {"bind": BUILD_ROOT, "mode": "rw"},
            str(self.wheelhouse): {"bind": "/wheels", "mode": "ro"},
            str(self.lock.parent): {"bind": "/locks", "mode": "ro"},
            self.uv: {"bind": "/opt/uv/uv", "mode": "ro"},
        }
        from reprobuild.oci.engine import ENGINE_ERRORS

        try:
            container = self.client.containers.create(
                self.image_id,
                command=command,
                user=BUILD_USER,
                environment=env,
                working_dir=BUILD_ROOT,
                network_mode="none",
                volumes=volumes,
            )
        except ENGINE_ERRORS as e:
            raise EngineError(f"creating the builder container for the {step}: {e}") from e
        try:
            container.start()
            status = container.wait()
            logs = container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
        except ENGINE_ERRORS as e:
            raise EngineError(f"running the builder container for the {step}: {e}") from e
        finally:
            with contextlib.suppress(*ENGINE_ERRORS):
                container.remove(force=True)
        if status.get("StatusCode") != 0:
            raise backend_failure(step, logs, self.lock)
        out_dir.mkdir(parents=True, exist_ok=True)
        for p in sorted((mount / "out").iterdir()):
            shutil.copyfile(p, out_dir / p.name)

    def builder(self) -> Builder | None:
        return self.recorded

    def flags(self) -> Mapping[str, str]:
        return self.caller_flags


@contextlib.contextmanager
def container_runner(
    config: Config, epoch: Epoch, lock: Path, scm: Mapping[str, str] | None = None
) -> Iterator[ContainerRunner]:
    """A :class:`ContainerRunner` for the project's builder, with its wheelhouse (removed afterwards)."""
    text = builder_reference(config)
    if text is None:
        raise ConfigError(
            "`--in-container` needs a builder image, and none is configured",
            hint='set `builder = "<image>@sha256:…"` in `[tool.repro-build]`, or add a `builder` stage to '
            "Dockerfile.base",
        )
    client = _engine()
    try:
        recorded, image_id = resolve_builder(client, text)
        with tempfile.TemporaryDirectory(prefix="repro-build-wheelhouse-") as tmp:
            wheelhouse = Path(tmp)
            download_build_deps(lock, config.python, wheelhouse)
            wheelhouse.chmod(0o755)
            for p in wheelhouse.iterdir():
                p.chmod(0o644)
            flags = {**user_flags(os.environ), **(scm or {})}
            yield ContainerRunner(
                client, image_id, recorded, lock, config.python, epoch, wheelhouse, caller_flags=flags
            )
    finally:
        client.close()


__all__ = ["BUILD_USER", "ContainerRunner", "builder_configured", "builder_reference", "container_runner"]
