"""setuptools, plus the build requirements listed in build-requires.txt (as cython or ninja would be)."""

from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403


def _extra() -> list[str]:
    return Path("build-requires.txt").read_text().split()


def get_requires_for_build_sdist(config_settings=None):
    return _setuptools.get_requires_for_build_sdist(config_settings) + _extra()


def get_requires_for_build_wheel(config_settings=None):
    return _setuptools.get_requires_for_build_wheel(config_settings) + _extra()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    import six  # noqa: F401  (only there if the frontend installed what get_requires_for_build_wheel asked for)

    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
