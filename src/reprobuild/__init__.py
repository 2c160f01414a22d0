"""repro-build: bit-for-bit reproducible wheels and container images for Python and ML projects."""

from importlib.metadata import PackageNotFoundError, version

from reprobuild.distribution import DISTRIBUTION

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
