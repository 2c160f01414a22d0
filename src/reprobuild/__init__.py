"""repro-build: bit-for-bit reproducible wheels and container images for Python and ML projects."""

#: The one place the version is written: the build backend reads it from here into the distribution's
#: metadata (``[tool.hatch.version]`` in pyproject.toml), so the two cannot differ, and start-up does not
#: pay for reading the installed metadata.
__version__ = "0.1.0"

__all__ = ["__version__"]
