"""repro-build: bit-for-bit reproducible wheels and container images for Python and ML projects."""

#: The distribution's version, as pyproject.toml states it (tests/foundation/test_cli.py checks that they
#: agree): written here too so that start-up does not pay for reading the installed metadata.
__version__ = "0.1.0"

__all__ = ["__version__"]
