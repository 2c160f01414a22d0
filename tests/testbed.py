"""The real parts the tests run against: the Docker engine and a loopback OCI registry.

When ``CI`` is set, a missing service is a test *failure*, never a skip: a skipped test is not a
passed test. On a developer machine without the service, the tests that need it are skipped with
the command that would provide it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when running under CI (``CI`` set to anything but empty/false/0)."""
    return os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}


def unavailable(what: str, hint: str) -> NoReturn:
    """Fail under CI, skip elsewhere."""
    message = f"{what} is not available: {hint}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require_tool(tool: str, hint: str) -> str:
    """The path of the command ``tool``; when it is not installed, fail under CI and skip elsewhere."""
    path = shutil.which(tool)
    if path is None:
        unavailable(f"`{tool}`", hint)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Registry:
    """A running loopback registry: ``host`` is ``127.0.0.1:PORT``, storage under ``root``."""

    host: str
    root: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"


_REGISTRY_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
{extra}"""


@dataclass
class RegistryProcess:
    """A ``docker-registry serve`` child process bound to 127.0.0.1."""

    registry: Registry
    process: subprocess.Popen[bytes]
    workdir: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_registry(extra_config: str = "") -> RegistryProcess:
    """Start the Debian ``docker-registry`` on a free loopback port with storage in a temp dir.

    ``extra_config`` is appended to the YAML config (e.g. an ``auth:`` section for auth tests).
    The port is free when chosen, but the registry binds it a moment later, and anything else on the
    machine may take it in between: a registry that then exits with ``address already in use`` is
    started again on another port (at most three tries).
    """
    binary = shutil.which("docker-registry")
    if binary is None:
        unavailable("the OCI registry", "`apt-get install -y docker-registry` (`.ci/run` does this)")
    output = ""
    for _try in range(3):
        started, output = _start_registry(binary, extra_config)
        if started is not None:
            return started
        if "address already in use" not in output:
            break
    unavailable("the OCI registry", f"`docker-registry serve` did not come up:\n{output}")


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port`` (from ``/proc``)."""
    inodes: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = str(fd.readlink())
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(link.removeprefix("socket:[").removesuffix("]"))
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        # local address (hex, 127.0.0.1 little-endian), state 0A = LISTEN, inode
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A" and fields[9] in inodes:
            return True
    return False


def _start_registry(binary: str, extra_config: str) -> tuple[RegistryProcess | None, str]:
    """One start on one port: the running registry, or ``None`` and what it printed."""
    workdir = Path(tempfile.mkdtemp(prefix="repro-build-registry-"))
    root = workdir / "storage"
    root.mkdir()
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(_REGISTRY_CONFIG.format(root=root, port=port, extra=extra_config))
    with (workdir / "registry.log").open("wb") as log:
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    registry = Registry(f"127.0.0.1:{port}", root)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"{registry.url}/v2/", timeout=1).close()
        except urllib.error.HTTPError:
            pass  # 401 from an auth-enabled registry still means it is up
        except OSError:
            time.sleep(0.1)
            continue
        if _listens(proc.pid, port):  # what answered is ours, not a listener that took the port first
            return RegistryProcess(registry, proc, workdir), ""
        time.sleep(0.1)  # ours exits (address in use) or binds later
    proc.kill()
    proc.wait()
    output = (workdir / "registry.log").read_text(errors="replace")
    shutil.rmtree(workdir, ignore_errors=True)
    return None, output


@dataclass(frozen=True)
class Engine:
    """A reachable Docker engine: the SDK client and the CLI binary that talks to it."""

    client: object  # docker.DockerClient (the SDK is untyped)
    cli: str


def connect_engine() -> Iterator[Engine]:
    """Yield an engine client, or fail/skip when the engine is not running."""
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as e:
        unavailable(
            "the Docker engine",
            f"{e}; start it with `dockerd --bridge=none --iptables=false &` (`.ci/run` does this)",
        )
    cli = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")
    try:
        yield Engine(client, cli)
    finally:
        client.close()


def _run_ok(argv: list[str]) -> str | None:
    """None when ``argv`` succeeds, else what it said."""
    try:
        out = subprocess.run(argv, capture_output=True, check=False)
    except FileNotFoundError:
        return f"`{argv[0]}` is not installed"
    if out.returncode == 0:
        return None
    return f"`{' '.join(argv)}`: {out.stderr.decode(errors='replace').strip()}"


def mount_other_fs(where: Path, size: str = "4g") -> Iterator[Path]:
    """Mount a file system other than the one holding ``where.parent`` on ``where`` and yield it.

    A tmpfs (needs root), else a loop-mounted ext4 image beside it. Fails under CI, skips elsewhere,
    when neither can be mounted: a test of moves across file systems must not pass on one.
    """
    where.mkdir(parents=True, exist_ok=True)
    image = where.parent / f".{where.name}.ext4"
    tmpfs = _run_ok(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "repro-build-test", str(where)])
    loop = None
    if tmpfs is not None:
        loop = (
            _run_ok(["truncate", "-s", size.upper(), str(image)])
            or _run_ok(["mkfs.ext4", "-q", "-F", str(image)])
            or _run_ok(["mount", "-o", "loop", str(image), str(where)])
        )
    if tmpfs is not None and loop is not None:
        image.unlink(missing_ok=True)
        unavailable("a second file system", f"{tmpfs}; {loop} (run the tests as root)")
    try:
        if where.stat().st_dev == where.parent.stat().st_dev:
            pytest.fail(f"{where} was mounted but is on the same device as {where.parent}")
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=False)
        image.unlink(missing_ok=True)
