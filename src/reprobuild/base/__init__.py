"""Base image sources.

:mod:`reprobuild.base.debian` builds a Python base image from pinned Debian packages, with no
registry and no Docker (``base = "debian:<suite>"`` in ``[tool.repro-build]``).
"""
