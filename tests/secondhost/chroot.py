"""A second host for the host-independence test: Debian 13 (trixie) in a chroot, running repro-build on
its own Python 3.13.

The chroot is made once per machine with ``mmdebstrap --variant=apt`` and cached under
``~/.cache/repro-build-tests/secondhost/<key>/`` (``$REPRO_BUILD_TEST_CACHE`` moves it), where ``key``
is a hash of the whole recipe: suite, packages, the apt mirror, the mmdebstrap version, the host
architecture and repro-build's runtime dependencies (installed into ``/opt/repro-build`` in the chroot
with the chroot's pip). Next to the tree, ``tree.sha256`` holds a digest of every path, mode, link
target and file content; a cached chroot is used only if it still hashes to it, else it is rebuilt.

The mirror is the machine's own (the apt source that carries the host's Debian suite, read by
:mod:`reprobuild.base.debian.sources`), with the suite swapped for trixie; never a host named here.
``REPRO_BUILD_SECONDHOST_MIRROR`` overrides it on machines whose apt sources are not Debian's.

The cached tree is never written again: every use mounts it as the lower layer of an overlay whose
upper layer lives in a temp dir. Each command runs in its own mount namespace
(``unshare --mount --propagation private``) that mounts the overlay, ``/proc``, ``/sys``, ``/dev`` and
the bind mounts, then ``chroot``s; the kernel drops every one of those mounts when the command ends,
however it ends, so nothing is left mounted on the host even after a killed test.

What crosses from the host, and only that: the CA bundle and the pip/uv configuration files (bound
read-only at their own paths, with the local wheel directories and ``file://`` indexes they name),
the host's Python of the image's ``X.Y`` for uv to build with (nothing can be downloaded, and Debian
13 has no 3.11), an exchange directory, and the environment variables that configure pip, uv, TLS
and proxies.
"""

from __future__ import annotations

import configparser
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reprobuild.base.debian.sources import default_mirror
from tests.oci.rootfs import CACHE_DIR

SUITE = "trixie"
#: python3-venv brings pip (ensurepip) for the venv; git clones the commit; ca-certificates owns the CA
#: bundle path that the host's bundle is bound over.
PACKAGES = ("python3", "python3-venv", "git", "ca-certificates")
#: Bumped when the recipe changes in a way the cache key below does not see.
RECIPE_VERSION = "2"
#: Where repro-build's virtual environment lives inside the chroot.
VENV = "/opt/repro-build"
#: Where the exchange directory appears inside the chroot.
EXCHANGE = "/exchange"
REPO_ROOT = Path(__file__).resolve().parents[2]

#: Host environment variables that configure pip, uv, TLS and proxies; passed into the chroot as they are.
_PASSED_PREFIXES = ("PIP_", "UV_")
_PASSED_NAMES = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)
_PIP_CONFIGS = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "~/.config/pip/pip.conf", "~/.pip/pip.conf")
_UV_CONFIGS = ("/etc/uv/uv.toml", "~/.config/uv/uv.toml")
_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt",)


class SecondHostUnavailable(Exception):
    """The chroot cannot be made or entered on this machine (the caller fails under CI, skips elsewhere)."""


@dataclass(frozen=True)
class Bind:
    """``source`` on the host appears at ``target`` in the chroot (read-only unless ``writable``)."""

    source: Path
    target: str
    writable: bool = False


def host_codename(os_release: Path = Path("/etc/os-release")) -> str:
    """The host's Debian suite (``VERSION_CODENAME``), whose apt source gives the mirror."""
    for line in os_release.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip('"'):
            return value.strip('"')
    raise SecondHostUnavailable(f"{os_release} names no VERSION_CODENAME; set REPRO_BUILD_SECONDHOST_MIRROR")


def mirror() -> str:
    """The Debian mirror for the chroot: the machine's own, or ``$REPRO_BUILD_SECONDHOST_MIRROR``."""
    explicit = os.environ.get("REPRO_BUILD_SECONDHOST_MIRROR")
    if explicit:
        return explicit.rstrip("/")
    try:
        return default_mirror(host_codename())
    except Exception as e:
        raise SecondHostUnavailable(f"no Debian mirror: {e}; set REPRO_BUILD_SECONDHOST_MIRROR") from e


def runtime_dependencies(pyproject: Path = REPO_ROOT / "pyproject.toml") -> tuple[str, ...]:
    """repro-build's ``[project] dependencies``: what the chroot's venv is made with.

    uv is pinned to the version this host runs, since every lock records it as an input: the two hosts
    must run the same uv, as two users following one lock's header would.
    """
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    deps = [str(d) for d in tomllib.loads(pyproject.read_text())["project"]["dependencies"]]
    return tuple(f"uv=={version('uv')}" if Requirement(d).name == "uv" else d for d in deps)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SecondHostUnavailable(f"`{name}` is not installed (`.ci/run` installs it: apt-get install -y {name})")
    return found


def recipe() -> dict[str, str]:
    """Every input of the cached chroot; its hash is the cache key."""
    version = subprocess.run([_tool("mmdebstrap"), "--version"], capture_output=True, text=True, check=False)
    return {
        "recipe": RECIPE_VERSION,
        "suite": SUITE,
        "packages": ",".join(PACKAGES),
        "mirror": mirror(),
        "mmdebstrap": version.stdout.strip(),
        "arch": platform.machine(),
        "dependencies": "\n".join(runtime_dependencies()),
    }


def recipe_key(values: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(values):
        h.update(f"{name}\0{values[name]}\0".encode())
    return h.hexdigest()[:20]


def tree_digest(root: Path) -> str:
    """sha256 over every entry under ``root``: relative path, type and mode, link target or content hash.

    Device nodes and sockets count by type and mode only. Walks in sorted order, never follows links.
    """
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            path = Path(dirpath) / name
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            h.update(f"{rel}\0{st.st_mode:o}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(str(path.readlink()).encode() + b"\0")
            elif stat.S_ISREG(st.st_mode):
                with path.open("rb") as f:
                    h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def _config_files(candidates: Sequence[str], env_var: str | None) -> list[Path]:
    found = [Path(c).expanduser() for c in candidates]
    if env_var and os.environ.get(env_var):
        found.append(Path(os.environ[env_var]))
    return [p.resolve() for p in found if p.is_file()]


def _local_paths(pip_conf: Path) -> list[Path]:
    """Host files and directories a pip config names (``find-links``, ``file://`` indexes, ``constraint``,
    ``cert``...): bound at their own paths so the configuration means the same in the chroot."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(pip_conf)
    except configparser.Error:
        return []
    out: list[Path] = []
    for section in parser.sections():
        for _key, value in parser.items(section):
            for word in value.split():
                path = Path(word.removeprefix("file://"))
                if path.is_absolute() and path.exists():
                    out.append(_index_root(path.resolve()))
    return out


def _index_root(path: Path) -> Path:
    """A local PEP 503 index's pages link to files beside ``simple/`` (``../../files/…``): bind its parent."""
    return path.parent if path.name == "simple" and path.is_dir() else path


def host_binds() -> list[Bind]:
    """The host's CA bundle, pip and uv configuration, and the local indexes that configuration names."""
    binds: list[Bind] = []
    for bundle in _CA_BUNDLES:
        if Path(bundle).is_file():
            binds.append(Bind(Path(bundle), bundle))
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT"):
        value = os.environ.get(name)
        if value and Path(value).is_file() and value not in {b.target for b in binds}:
            binds.append(Bind(Path(value), value))
    pip_confs = _config_files(_PIP_CONFIGS, "PIP_CONFIG_FILE")
    for conf in pip_confs + _config_files(_UV_CONFIGS, "UV_CONFIG_FILE"):
        binds.append(Bind(conf, str(conf)))
    locations = {loc for conf in pip_confs for loc in _local_paths(conf)}
    for name, value in os.environ.items():
        if name.startswith(_PASSED_PREFIXES):
            for word in value.split():
                path = Path(word.removeprefix("file://"))
                if path.is_absolute() and path.exists():
                    locations.add(_index_root(path.resolve()))
    taken = {b.target for b in binds}
    binds.extend(Bind(loc, str(loc)) for loc in sorted(locations) if str(loc) not in taken)
    return binds


@dataclass(frozen=True)
class LentPython:
    """One host interpreter of the image's ``X.Y``, and how it appears at its own path in the chroot."""

    version: str
    prefix: str
    binds: tuple[Bind, ...]

    @property
    def bin_dir(self) -> str:
        return f"{self.prefix}/bin"


def lent_pythons(version: str) -> list[LentPython]:
    """Every Python ``version`` (``X.Y``) this host has, made to run at its own path in the chroot.

    uv builds the project wheel, and repro-build compiles byte-code, with an interpreter of the image's
    Python; Debian 13 has no 3.11 and nothing can be downloaded. Host B gets the same interpreters host A
    has, so that repro-build's own choice among them (the image's exact ``X.Y.Z`` first) is tested on
    both. A source build (pyenv, ``/usr/local``) is bound at its prefix; Debian's own as
    ``/usr/bin/pythonX.Y`` plus its standard library.
    """
    from reprobuild.uvbin import find_uv

    listed = subprocess.run(
        [
            *(find_uv(), "python", "list", version, "--only-installed"),
            *("--python-preference", "only-system", "--output-format", "json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        raise SecondHostUnavailable(f"`uv python list {version}` failed: {listed.stderr.strip()}")
    found: dict[str, LentPython] = {}
    for entry in json.loads(listed.stdout or "[]"):
        probe = subprocess.run(
            [str(entry["path"]), "-I", "-c", "import sys, platform; print(sys.base_prefix, platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode != 0:
            continue
        prefix, full = probe.stdout.split()
        if prefix in found or not full.startswith(f"{version}."):
            continue
        binds: tuple[Bind, ...]
        if prefix == "/usr":
            binds = (
                Bind(Path(f"/usr/bin/python{version}"), f"/usr/bin/python{version}"),
                Bind(Path(f"/usr/lib/python{version}"), f"/usr/lib/python{version}"),
            )
        else:
            binds = (Bind(Path(prefix), prefix),)
        found[prefix] = LentPython(full, prefix, binds)
    if not found:
        raise SecondHostUnavailable(f"this host has no Python {version} to lend the chroot (`uv python list`)")
    return sorted(found.values(), key=lambda p: p.prefix)


_ENTER = r"""
root=$1 lower=$2 upper=$3 work=$4; shift 4
if [ -n "$lower" ]; then
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$root"
fi
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
while [ "$1" != "--" ]; do
  src=$1 dst=$root$2 mode=$3; shift 3
  if [ -d "$src" ]; then mkdir -p "$dst"; else mkdir -p "$(dirname "$dst")"; [ -e "$dst" ] || : > "$dst"; fi
  mount --bind "$src" "$dst"
  [ "$mode" = rw ] || mount -o remount,bind,ro "$dst"
done
shift
exec chroot "$root" "$@"
"""


@dataclass
class SecondHost:
    """A running use of the cached chroot: an overlay on it, an exchange dir, and a way to run commands."""

    tree: Path
    scratch: Path
    binds: list[Bind] = field(default_factory=list)
    path_tail: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def exchange(self) -> Path:
        """Host side of ``/exchange`` in the chroot (read-write)."""
        return self.scratch / "exchange"

    def apt_mirror(self) -> str:
        """The Debian archive the chroot's own apt sources name (for the suite it runs, not the image's)."""
        return default_mirror(SUITE, root=self.tree)

    def inside(self, host_path: Path) -> str:
        """Where a path under :attr:`exchange` appears in the chroot."""
        return f"{EXCHANGE}/{host_path.relative_to(self.exchange).as_posix()}"

    def run(
        self, args: Sequence[str], *, cwd: str = "/root", env: Mapping[str, str] | None = None, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` in the chroot (as root, cwd ``cwd``) with the passed-through environment plus ``env``."""
        return _enter(
            self.scratch / "root",
            lower=self.tree,
            upper=self.scratch / "upper",
            work=self.scratch / "work",
            binds=[*self.binds, Bind(self.exchange, EXCHANGE, writable=True)],
            env={**self.env, **(env or {})},
            cwd=cwd,
            args=args,
            timeout=timeout,
        )


def _passed_env(path_tail: str) -> dict[str, str]:
    env = {
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        + (f":{path_tail}" if path_tail else ""),
        # Nothing can be downloaded here: say so to uv rather than let it try.
        "UV_PYTHON_DOWNLOADS": "never",
    }
    for name, value in os.environ.items():
        if name.startswith(_PASSED_PREFIXES) or name in _PASSED_NAMES:
            env[name] = value
    return env


def _enter(
    root: Path,
    *,
    lower: Path | None,
    upper: Path | None,
    work: Path | None,
    binds: Sequence[Bind],
    env: Mapping[str, str],
    cwd: str,
    args: Sequence[str],
    timeout: float,
) -> subprocess.CompletedProcess[str]:
    bind_args: list[str] = []
    for b in binds:
        bind_args += [str(b.source), b.target, "rw" if b.writable else "ro"]
    cmd = [
        _tool("unshare"),
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-euc",
        _ENTER,
        "enter",
        str(root),
        str(lower or ""),
        str(upper or ""),
        str(work or ""),
        *bind_args,
        "--",
        "/usr/bin/env",
        "-i",
        *(f"{k}={v}" for k, v in sorted(env.items())),
        "sh",
        "-c",
        'cd "$0" && exec "$@"',
        cwd,
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        raise SecondHostUnavailable(f"{what} failed (exit {proc.returncode}):\n{(proc.stderr or proc.stdout)[-4000:]}")


def _build(dest: Path, values: Mapping[str, str], log: list[str]) -> None:
    """mmdebstrap the tree into ``dest/root``, add repro-build's dependencies in a venv, hash it."""
    root = dest / "root"
    start = time.monotonic()
    source = f"deb {values['mirror']} {SUITE} main"
    proc = subprocess.run(
        [
            *(_tool("mmdebstrap"), "--variant=apt", "--quiet", f"--include={','.join(PACKAGES)}"),
            # No fsync per unpacked file: a half-written tree is never renamed into the cache anyway.
            "--dpkgopt=force-unsafe-io",
            *(SUITE, str(root), source),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    _check(proc, f"mmdebstrap {SUITE}")
    debootstrapped = time.monotonic() - start
    env = _passed_env("")
    venv = _enter(
        root,
        lower=None,
        upper=None,
        work=None,
        binds=host_binds(),
        env=env,
        cwd="/root",
        args=[
            "sh",
            "-euc",
            f'python3 -m venv {VENV} && {VENV}/bin/pip install -q "$@"',
            "pip",
            *runtime_dependencies(),
        ],
        timeout=1200,
    )
    _check(venv, f"installing repro-build's dependencies in the chroot ({VENV})")
    # Whatever the builds left behind that is not part of the recipe.
    shutil.rmtree(root / "root" / ".cache", ignore_errors=True)
    if _mounts_under(root):
        raise SecondHostUnavailable(f"mounts were left under {root}: {_mounts_under(root)}")
    total = time.monotonic() - start
    (dest / "tree.sha256").write_text(tree_digest(root) + "\n")
    (dest / "build-seconds.txt").write_text(f"mmdebstrap {debootstrapped:.1f}\ntotal {total:.1f}\n")
    log.append(f"built the {SUITE} chroot in {total:.0f}s (mmdebstrap {debootstrapped:.0f}s)")


def cached_tree(log: list[str]) -> Path:
    """The cached, verified chroot tree for the current recipe, built when absent or not verifying."""
    values = recipe()
    key = recipe_key(values)
    base = CACHE_DIR / "secondhost"
    base.mkdir(parents=True, exist_ok=True)
    entry = base / key
    with (base / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if entry.is_dir():
            start = time.monotonic()
            recorded = (entry / "tree.sha256").read_text().strip() if (entry / "tree.sha256").is_file() else ""
            actual = tree_digest(entry / "root")
            if actual == recorded:
                log.append(f"cached {SUITE} chroot {entry} verified in {time.monotonic() - start:.1f}s")
                return entry / "root"
            log.append(f"cached {SUITE} chroot {entry} does not match its tree.sha256: rebuilding it")
            shutil.rmtree(entry)
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=".build-"))
        try:
            _build(tmp, values, log)
            (tmp / "recipe.txt").write_text("".join(f"{k}: {v}\n" for k, v in sorted(values.items())))
            # Renamed into place only when complete: a killed build leaves no cache entry.
            tmp.replace(entry)
        except BaseException:
            _remove_tree(tmp)
            raise
    return entry / "root"


@contextlib.contextmanager
def second_host(pythons: Sequence[str], log: list[str]) -> Iterator[SecondHost]:
    """Enter the cached chroot through a fresh overlay; the host's Pythons ``pythons`` (``X.Y``) are lent for uv."""
    if os.geteuid() != 0:
        raise SecondHostUnavailable("making and entering a chroot needs root")
    tree = cached_tree(log)
    lent = [p for version in pythons for p in lent_pythons(version)]
    # After the chroot's own directories: `python3` stays Debian 13's, uv still finds the lent X.Y.
    path_tail = ":".join(dict.fromkeys(p.bin_dir for p in lent if p.prefix != "/usr"))
    scratch = Path(tempfile.mkdtemp(prefix="repro-build-secondhost-"))
    try:
        for name in ("root", "upper", "work", "exchange"):
            (scratch / name).mkdir()
        binds = [*host_binds(), *(b for p in lent for b in p.binds)]
        host = SecondHost(tree, scratch, binds, path_tail, _passed_env(path_tail))
        probe = host.run(["python3", "--version"])
        _check(probe, "entering the chroot")
        lent_text = ", ".join(f"{p.version} ({p.prefix})" for p in lent)
        log.append(f"second host: Debian {SUITE}, {probe.stdout.strip()}; lent Python {lent_text}")
        yield host
    finally:
        # The mounts lived in per-command namespaces: only files are left to remove.
        _remove_tree(scratch)


def _mounts_under(path: Path) -> list[str]:
    """Mount points of this namespace at or under ``path`` (none, since every mount lives in a command's own)."""
    targets = Path("/proc/self/mountinfo").read_text().splitlines()
    mounts = [line.split()[4] for line in targets]
    return [m for m in mounts if m == str(path) or m.startswith(f"{path}/")]


def _remove_tree(path: Path) -> None:
    """Remove a scratch or half-built tree, refusing while anything is mounted under it."""
    if _mounts_under(path):
        raise RuntimeError(f"{path} still has mounts under it ({_mounts_under(path)}); not removing it")
    shutil.rmtree(path, ignore_errors=True)


def install_repro_build(host: SecondHost, checkout: Path = REPO_ROOT) -> str:
    """Build repro-build's wheel from ``checkout`` on the host and install it in the chroot's venv; its version."""
    from reprobuild.uvbin import find_uv

    dist = host.exchange / "dist"
    proc = subprocess.run(
        [find_uv(), "build", "--wheel", "--out-dir", str(dist), "--no-progress", str(checkout)],
        capture_output=True,
        text=True,
        check=False,
    )
    _check(proc, f"building repro-build's wheel from {checkout}")
    from reprobuild.distribution import DISTRIBUTION

    (wheel,) = dist.glob(f"{DISTRIBUTION}-*.whl")
    installed = host.run(
        [
            "sh",
            "-euc",
            f'{VENV}/bin/pip install -q --no-deps --force-reinstall "$1" && repro-build --version',
            "pip",
            host.inside(wheel),
        ]
    )
    _check(installed, "installing repro-build in the chroot")
    return installed.stdout.strip()


if __name__ == "__main__":
    # `python -m tests.secondhost.chroot`: build (or verify) the cached chroot and print where it is.
    messages: list[str] = []
    print(cached_tree(messages))
    print("\n".join(messages), file=sys.stderr)
