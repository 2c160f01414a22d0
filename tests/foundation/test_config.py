"""Config parsing: good input, zero configuration, and each kind of bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import zstandard

from reprobuild.config import DEFAULT_MANYLINUX, load_config
from reprobuild.errors import ConfigError, ReproBuildError
from reprobuild.oci.compress import Compressor
from tests.foundation.helpers import BASIC_PROJECT, write_project

DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_zero_configuration_gives_one_cpu_target_on_debian(tmp_path: Path) -> None:
    config = load_config(write_project(tmp_path))
    assert not config.explicit
    assert list(config.targets) == ["cpu"]
    cpu = config.targets["cpu"]
    assert cpu.base.kind == "debian" and cpu.base.suite == "bookworm"
    assert cpu.manylinux == DEFAULT_MANYLINUX
    assert cpu.python == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert cpu.flags == ("python",)
    assert cpu.binary_only
    assert config.epoch_policy == "git"
    assert config.compression.algorithm == "gzip" and config.compression.level == 6


def test_seed_switches_and_env_removal(tmp_path: Path) -> None:
    tool = """
    [tool.repro-build]
    seed = 0
    env = { MKL_CBWR = false, A = "1" }
    determinism = { warn_only = true }

    [tool.repro-build.targets.cpu]
    env = { OMP_NUM_THREADS = "2", MKL_CBWR = "AVX2" }

    [tool.repro-build.targets.other]
    seed = "off"
    determinism = { deterministic_algorithms = false, cudnn_benchmark = true }
    """
    config = load_config(write_project(tmp_path, tool=tool))
    cpu, other = config.targets["cpu"], config.targets["other"]
    assert config.env == {"A": "1"} and config.env_unset == ("MKL_CBWR",)
    assert cpu.seed == 0 and other.seed is None
    assert cpu.switches.warn_only and cpu.switches.deterministic_algorithms and not cpu.switches.cudnn_benchmark
    assert other.switches.warn_only and not other.switches.deterministic_algorithms and other.switches.cudnn_benchmark
    assert dict(cpu.env) == {"OMP_NUM_THREADS": "2", "MKL_CBWR": "AVX2"} and cpu.env_unset == ()
    assert config.to_dict()["env"] == {"A": "1", "MKL_CBWR": False}
    assert config.to_dict()["targets"]["cpu"]["seed"] == 0


def test_python_defaults_to_lowest_minor_allowed_when_running_one_is_not(tmp_path: Path) -> None:
    project = BASIC_PROJECT.replace('requires-python = ">=3.11"', 'requires-python = ">=3.13"')
    config = load_config(write_project(tmp_path, project))
    assert config.python == "3.13"


def test_full_configuration(tmp_path: Path) -> None:
    tool = f"""
    [tool.repro-build]
    python = "3.11.9"
    source-date-epoch = 1700000000
    exclude-newer = 2025-01-01T00:00:00Z
    compression = {{ algorithm = "zstd", level = 9 }}
    entrypoint = ["demo"]
    env = {{ APP_MODE = "prod" }}

    [tool.repro-build.targets.cpu]
    base = "slim"
    extras = ["extra"]
    groups = ["more"]
    flags = ["python", "mkl"]

    [tool.repro-build.targets.cuda]
    base = "registry.example:5000/cuda@{DIGEST}"
    platform = "linux/arm64"
    manylinux = "manylinux_2_34"
    layers = {{ split = ["torch"], threshold-mb = 10, budget = 16 }}
    """
    dockerfile = f"FROM python:3.11-slim@{DIGEST} AS slim\nFROM slim AS again\n"
    config = load_config(write_project(tmp_path, tool=tool, dockerfile=dockerfile))
    cpu, cuda = config.targets["cpu"], config.targets["cuda"]
    assert cpu.base.kind == "registry" and cpu.base.stage == "slim" and cpu.base.digest == DIGEST
    assert cpu.python_platform.endswith("-manylinux_2_28")
    assert cpu.extras == ("extra",) and cpu.groups == ("more",)
    assert cuda.accelerator == "cuda"
    assert cuda.python_platform == "aarch64-manylinux_2_34"
    assert cuda.layers.split == ("torch",) and cuda.layers.budget == 16
    assert config.exclude_newer == "2025-01-01T00:00:00Z"
    assert config.compression == Compressor.zstd(9)  # made once here, with its library versions, and passed down
    assert config.compression.describe()["library_version"] == zstandard.__version__
    assert config.epoch_policy == 1700000000
    assert config.to_dict()["targets"]["cuda"]["platform"] == "linux/arm64"


@pytest.mark.parametrize(
    ("tool", "path_in_message", "hint_part"),
    [
        ('[tool.repro-build]\npyhton = "3.11"\n', "tool.repro-build.pyhton", "did you mean `python`"),
        ('[tool.repro-build.targets.cpu]\nplatfrom = "linux/amd64"\n', "targets.cpu.platfrom", "`platform`"),
        ('[tool.repro-build.targets.cpu]\nplatform = "windows/amd64"\n', "targets.cpu.platform", "linux/amd64"),
        ("[tool.repro-build.targets.cpu]\nplatform = 3\n", "targets.cpu.platform", None),
        ('[tool.repro-build.targets.cpu]\nextras = ["nope"]\n', "targets.cpu.extras[0]", "extra"),
        ('[tool.repro-build.targets.cpu]\ngroups = ["tool"]\n', "targets.cpu.groups[0]", "`tools`"),
        ('[tool.repro-build.targets.cpu]\nflags = ["troch"]\n', "targets.cpu.flags[0]", "`torch`"),
        ('[tool.repro-build.targets.cpu]\nbase = "python:3.11-slim"\n', "targets.cpu.base", "sha256"),
        ('[tool.repro-build.targets.cpu]\nbase = "slimm"\n', "targets.cpu.base", None),
        ('[tool.repro-build.targets.cpu]\nmanylinux = "manylinux2014"\n', "targets.cpu.manylinux", None),
        ('[tool.repro-build]\nsource-date-epoch = "yesterday"\n', "source-date-epoch", "git"),
        ('[tool.repro-build]\npython = "3"\n', "tool.repro-build.python", None),
        ('[tool.repro-build]\ncompression = { algorithm = "brotli" }\n', "compression.algorithm", None),
        ("[tool.repro-build]\ncompression = { level = 13 }\n", "compression.level", None),
        ('[tool.repro-build]\ncompression = { algorithm = "zstd", level = 20 }\n', "compression.level", None),
        ('[tool.repro-build]\ncompression = { algorithm = "none", level = 1 }\n', "compression.level", None),
        ('[tool.repro-build]\nexclude-newer = "last week-ish"\n', "exclude-newer", None),
        ("[tool.repro-build.targets.build]\n", "targets.build", None),
        ("[tool.repro-build.targets.cpu]\nlayers = { budget = 500 }\n", "layers.budget", "127"),
        ('[tool.repro-build]\nenv = { "BAD-NAME" = "x" }\n', "env.BAD-NAME", None),
        # A name that ends in a newline is no name (a `$` anchor let these by; they become paths and env lines).
        ('[tool.repro-build]\nenv = { "NAME\\n" = "x" }\n', "env.NAME", None),
        ('[tool.repro-build.targets."cpu\\n"]\n', "target names are lowercase", "file names"),
        ('[tool.repro-build]\npython = "3.11\\n"\n', "python", None),
        ('[tool.repro-build.targets.cpu]\nbase = "debian:bookworm\\n"\n', "does not name a Debian suite", None),
        ('[tool.repro-build.targets.cpu]\nbase = "oci-layout:./img"\n', "targets.cpu.base", "sha256"),
        ("[tool.repro-build]\nseed = -1\n", "tool.repro-build.seed", "2**32"),
        ('[tool.repro-build.targets.cpu]\nseed = "random"\n', "targets.cpu.seed", None),
        ("[tool.repro-build.targets.cpu]\nseed = 4294967296\n", "targets.cpu.seed", None),
        ("[tool.repro-build]\nenv = { MKL_CBWR = true }\n", "env.MKL_CBWR", None),
        ("[tool.repro-build.targets.cpu]\ndeterminism = { warn = true }\n", "determinism.warn", "`warn_only`"),
        ('[tool.repro-build.targets.cpu]\ndeterminism = { warn_only = "yes" }\n', "determinism.warn_only", None),
    ],
)
def test_bad_tool_config_names_the_toml_path(
    tmp_path: Path, tool: str, path_in_message: str, hint_part: str | None
) -> None:
    write_project(tmp_path, tool=tool)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert path_in_message in err.value.message
    if hint_part is not None:
        assert err.value.hint is not None and hint_part in err.value.hint


@pytest.mark.parametrize(
    ("pyproject", "message_part"),
    [
        ("[project\nname = 'x'\n", "not valid TOML"),
        ("[tool.other]\nx = 1\n", "no `[project]` table"),
        ('[project]\nname = "x"\n', "project.version"),
        ('[project]\nname = "x"\nversion = "1"\ndependencies = ["not a ( requirement"]\n', "dependencies[0]"),
        ('[project]\nname = "x"\nversion = "1"\nrequires-python = "~>3"\n', "requires-python"),
        ('[project]\nname = "x"\nversion = "1"\n[build-system]\nbuild-backend = "x"\n', "build-system.requires"),
    ],
)
def test_bad_project_metadata(tmp_path: Path, pyproject: str, message_part: str) -> None:
    write_project(tmp_path, pyproject)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert message_part in err.value.message


def test_missing_pyproject(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no pyproject\.toml"):
        load_config(tmp_path)


def test_no_build_system_uses_the_pep517_default(tmp_path: Path) -> None:
    config = load_config(write_project(tmp_path, '[project]\nname = "x"\nversion = "1"\n'))
    assert config.project.build_requires == ("setuptools>=40.8.0",)
    assert config.project.build_backend == "setuptools.build_meta:__legacy__"
    assert not config.project.build_system_declared


def test_target_named_like_a_stage_uses_it_by_default(tmp_path: Path) -> None:
    tool = "[tool.repro-build.targets.gpu]\n"
    config = load_config(write_project(tmp_path, tool=tool, dockerfile=f"FROM nvidia/cuda@{DIGEST} AS gpu\n"))
    assert config.targets["gpu"].base.reference is not None
    assert config.targets["gpu"].base.reference.repository == "nvidia/cuda"


def test_unpinned_stage_is_refused_with_resolve_bases_hint(tmp_path: Path) -> None:
    tool = '[tool.repro-build.targets.cpu]\nbase = "slim"\n'
    write_project(tmp_path, tool=tool, dockerfile="FROM python:3.11-slim AS slim\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert "Dockerfile.base:1" in err.value.message and "without a digest" in err.value.message
    assert err.value.hint and "--resolve-bases" in err.value.hint


def test_base_takes_every_local_location_form(tmp_path: Path) -> None:
    """The base grammar is the image-location grammar, with paths relative to the project."""
    bases = {
        "a": f"oci:vendor/layout@{DIGEST}",
        "b": f"vendor/layout@{DIGEST}",
        "c": "oci-archive:vendor/base.tar:cpu",
        "d": "vendor/base.tar",
        "e": f"docker://ghcr.io/org/py@{DIGEST}",
        "f": f"oci-layout:./layout@{DIGEST}",
        "g": "docker-archive:./img.tar",
        "h": "debian:trixie",
    }
    tool = "".join(f'[tool.repro-build.targets.{name}]\nbase = "{base}"\n' for name, base in bases.items())
    root = write_project(tmp_path, tool=tool)
    (root / "vendor" / "layout").mkdir(parents=True)
    (root / "vendor" / "layout" / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "vendor" / "base.tar").write_bytes(b"")
    config = load_config(root)
    a, b, c, d, e = (config.targets[n].base for n in "abcde")
    assert (a.kind, a.path, a.digest) == (b.kind, b.path, b.digest) == ("oci-layout", "vendor/layout", DIGEST)
    assert (c.kind, c.path, c.tag, c.digest) == ("docker-archive", "vendor/base.tar", "cpu", None)
    assert (d.kind, d.path) == ("docker-archive", "vendor/base.tar")
    assert e.kind == "registry" and e.reference is not None and e.reference.name == "ghcr.io/org/py"
    # A prefixed path is taken as written (checked when the image is built); a bare one must exist.
    f, g, h = (config.targets[n].base for n in "fgh")
    assert (f.kind, f.path, f.digest) == ("oci-layout", "layout", DIGEST)
    assert (g.kind, g.path) == ("docker-archive", "img.tar")
    assert (h.kind, h.suite) == ("debian", "trixie")


@pytest.mark.parametrize(
    ("base", "message", "hint"),
    [
        ("docker-daemon:app:cpu", "does not pin an image of the Docker engine by its ID", "docker-daemon:sha256:"),
        ("vendor/layout", "has no digest", "@sha256:<64 hex>"),
        ("./vendor/missing", "does not exist", "oci:"),
        ("vendor", "not an OCI image layout", "docker://vendor"),
        (f"oci:vendor/layout@sha512:{'ab' * 64}", "sha256 digests only", "sha256"),
    ],
)
def test_base_location_errors(tmp_path: Path, base: str, message: str, hint: str) -> None:
    root = write_project(tmp_path, tool=f'[tool.repro-build.targets.cpu]\nbase = "{base}"\n')
    (root / "vendor" / "layout").mkdir(parents=True)
    (root / "vendor" / "layout" / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    with pytest.raises(ReproBuildError) as err:
        load_config(root)
    assert message in err.value.message and "targets.cpu.base" in err.value.message
    assert err.value.hint is not None and hint in err.value.hint


def test_zstd_level_limit_is_the_compressors(tmp_path: Path) -> None:
    """Config and compressor share one bound: level 19 (an 8 MiB window, RFC 8878's interoperable maximum)."""
    from reprobuild.errors import OCIError
    from reprobuild.oci.compress import MAX_ZSTD_LEVEL, Compressor

    assert MAX_ZSTD_LEVEL == 19
    root = write_project(tmp_path, tool='[tool.repro-build]\ncompression = { algorithm = "zstd", level = 19 }\n')
    assert load_config(root).compression.level == 19
    assert Compressor.zstd(19).level == 19
    root.joinpath("pyproject.toml").write_text(
        root.joinpath("pyproject.toml").read_text().replace("level = 19", "level = 20")
    )
    with pytest.raises(ConfigError, match="must be from 1 to 19, got 20"):
        load_config(root)
    with pytest.raises(OCIError, match=r"outside 1\.\.19"):
        Compressor.zstd(20)
    with pytest.raises(OCIError, match=r"outside 1\.\.19"):
        Compressor.parse("zstd:22")


def test_target_policy_layers_project_env_then_target_env(tmp_path: Path) -> None:
    """`Target.policy`: the flag sets, the project's env and removals, then the target's (a later layer wins)."""
    from reprobuild.image.imageconfig import image_env

    tool = """
    [tool.repro-build]
    flags = ["python", "torch"]
    env = { PYTHONHASHSEED = "7", KEEP = "a", GONE = false }
    seed = 3
    [tool.repro-build.targets.cpu]
    env = { KEEP = "b", GONE = "back", CUBLAS_WORKSPACE_CONFIG = false }
    [tool.repro-build.targets.cuda]
    accelerator = "cuda"
    seed = "off"
    """
    config = load_config(write_project(tmp_path, tool=tool))
    cpu, cuda = config.targets["cpu"].policy, config.targets["cuda"].policy
    assert cpu.sets == ("python", "torch") and not cpu.cuda and cpu.seed == 3
    assert dict(cpu.user_env) == {"PYTHONHASHSEED": "7", "KEEP": "b", "GONE": "back"}
    assert cpu.unset == ("CUBLAS_WORKSPACE_CONFIG",)
    assert cpu.env["PYTHONHASHSEED"] == "7" and "CUBLAS_WORKSPACE_CONFIG" not in cpu.env
    assert cuda.cuda and cuda.seed is None and cuda.unset == ("GONE",) and "NVIDIA_VISIBLE_DEVICES" in cuda.env
    env = image_env(config, config.targets["cpu"], cpu, ["GONE=base", "CUBLAS_WORKSPACE_CONFIG=x"])
    assert "GONE=back" in env and "KEEP=b" in env and not any(e.startswith("CUBLAS_WORKSPACE_CONFIG=") for e in env)
