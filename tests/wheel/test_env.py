"""The normalised build environment: a whitelist of host variables plus fixed values."""

from __future__ import annotations

from reprobuild.epoch import Epoch
from reprobuild.wheel.buildenv import host_env, normalised_env, recorded_env, user_flags


def test_host_env_passes_only_index_and_network_settings() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "UV_CACHE_DIR": "/cache",
        "UV_INDEX_URL": "https://mirror.invalid/simple",
        "HTTPS_PROXY": "http://proxy.invalid:3128",
        # Everything below would change what gets built:
        "CFLAGS": "-O0 -DDEBUG",
        "LDFLAGS": "-L/opt/lib",
        "TZ": "Asia/Tokyo",
        "LANG": "de_DE.UTF-8",
        "SOURCE_DATE_EPOCH": "1",
        "PYTHONPATH": "/somewhere",
        "UV_NO_BUILD_ISOLATION": "1",
        "UV_CONSTRAINT": "/tmp/c.txt",
        "UV_PYTHON": "3.8",
    }
    assert host_env(environ) == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "UV_CACHE_DIR": "/cache",
        "UV_INDEX_URL": "https://mirror.invalid/simple",
        "HTTPS_PROXY": "http://proxy.invalid:3128",
    }


def test_normalised_env_maps_the_build_root() -> None:
    env = normalised_env("/tmp/repro-build-x", Epoch(1700000000, "git"))
    assert env["TZ"] == "UTC"
    assert env["LC_ALL"] == "C.UTF-8"
    assert env["PYTHONHASHSEED"] == "0"
    assert env["PYTHONNOUSERSITE"] == "1"
    assert env["SOURCE_DATE_EPOCH"] == "1700000000"
    assert env["TMPDIR"] == "/tmp/repro-build-x/tmp"
    # CFLAGS would replace the interpreter's -O3 -DNDEBUG in setuptools; CPPFLAGS is appended.
    assert "CFLAGS" not in env and "CXXFLAGS" not in env
    assert env["CPPFLAGS"] == "-ffile-prefix-map=/tmp/repro-build-x=."
    assert env["RUSTFLAGS"] == "--remap-path-prefix=/tmp/repro-build-x=."
    # The record shows the same variables with a placeholder for the random path.
    assert set(recorded_env(Epoch(1700000000, "git"))) == set(env)
    assert "/tmp/repro-build-x" not in "".join(recorded_env(Epoch(1700000000, "git")).values())


def test_callers_flags_are_kept_and_ours_appended() -> None:
    environ = {"CFLAGS": "-march=x86-64-v2", "CPPFLAGS": "-DFOO", "RUSTFLAGS": "-Copt-level=2", "LDFLAGS": " "}
    flags = user_flags(environ)
    assert flags == {"CFLAGS": "-march=x86-64-v2", "CPPFLAGS": "-DFOO", "RUSTFLAGS": "-Copt-level=2"}
    env = normalised_env("/b", Epoch(1, "git"), flags)
    assert env["CFLAGS"] == "-march=x86-64-v2"
    assert "CXXFLAGS" not in env and "LDFLAGS" not in env
    assert env["CPPFLAGS"] == "-DFOO -ffile-prefix-map=/b=."
    assert env["RUSTFLAGS"] == "-Copt-level=2 --remap-path-prefix=/b=."
    # The record shows the caller's flags too: they shaped the binary.
    assert recorded_env(Epoch(1, "git"), flags)["CFLAGS"] == "-march=x86-64-v2"
