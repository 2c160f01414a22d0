# Fixture: a project with no pyproject.toml and no [project] table, only setup.py + setup.cfg (PEP 517's
# default backend, setuptools.build_meta:__legacy__). Metadata comes from the backend.
from setuptools import setup

setup()
