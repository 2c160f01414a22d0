"""Our dependency closure equals apt's own solver for the same request (the real peer, same mirror).

apt runs against a private root (``-o Dir=…``, empty dpkg status, only this suite as source), so
the host's installed packages and configuration do not take part; ``--no-install-recommends``
matches our policy of following Depends and Pre-Depends only.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from reprobuild.base.debian.lock import make_lock, packages_with_defaults
from reprobuild.base.debian.sources import default_mirror
from tests.base.conftest import ARCH, SUITE, LockedBase
from tests.testbed import require_tool

pytestmark = [pytest.mark.network, pytest.mark.slow]


@pytest.mark.parametrize(
    ("extra", "suites"),
    [
        ((), ()),
        (("curl", "git", "python3-numpy", "python3-venv"), ()),
        (("curl",), (f"{SUITE}-updates", f"{SUITE}-security")),
    ],
    ids=["default", "more-packages", "with-updates-and-security"],
)
def test_closure_matches_apt(
    locked_base: LockedBase, tmp_path: Path, extra: tuple[str, ...], suites: tuple[str, ...]
) -> None:
    require_tool("apt-get", "apt (`.ci/run` runs on Debian)")
    root = tmp_path / "aptroot"
    for sub in ("etc/apt/sources.list.d", "etc/apt/preferences.d", "var/lib/apt/lists/partial", "var/lib/dpkg"):
        (root / sub).mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("")
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    lines = [f"deb [signed-by={keyring}] {default_mirror(suite)} {suite} main\n" for suite in (SUITE, *suites)]
    (root / "etc/apt/sources.list").write_text("".join(lines))
    options = [
        f"-oDir={root}",
        f"-oDir::State::status={root}/var/lib/dpkg/status",
        f"-oAPT::Architecture={ARCH}",
        "-oDebug::NoLocking=1",
    ]
    subprocess.run(["apt-get", "-q", *options, "update"], check=True, capture_output=True)
    extra_suites = tuple((suite, None) for suite in suites)
    inputs = replace(locked_base.inputs, packages=packages_with_defaults(extra), extra_suites=extra_suites)
    lock = make_lock(inputs, locked_base.cache) if extra else locked_base.lock
    requested = lock.inputs["packages"]
    out = subprocess.run(
        ["apt-get", *options, "install", "--simulate", "--no-install-recommends", *requested],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    apt = sorted(re.findall(r"^Inst (\S+) \((\S+) ", out, flags=re.MULTILINE))
    ours = sorted((p.name, p.version) for p in lock.packages)
    assert len(apt) > 40
    assert ours == apt
