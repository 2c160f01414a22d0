"""One error hierarchy for the whole library.

Only the CLI prints or exits. Library code raises a :class:`ReproBuildError` (or a subclass) whose
``message`` says what failed and where, and whose ``hint`` says what to do. The CLI renders it as::

    error: <message>

    hint: <hint>

and exits with :attr:`ReproBuildError.exit_code` (2 = bad input or environment; 1 is reserved for a
check that ran and found a difference, e.g. ``lock --check`` or ``verify``).
"""

from __future__ import annotations


class ReproBuildError(Exception):
    """Base error: a message naming the artifact, and an optional hint with the fix."""

    exit_code: int = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def with_context(self, context: str) -> ReproBuildError:
        """Return a copy of this error whose message is prefixed with ``context: ``."""
        new = type(self).__new__(type(self))
        ReproBuildError.__init__(new, f"{context}: {self.message}", self.hint)
        new.__dict__.update({k: v for k, v in self.__dict__.items() if k not in {"message", "hint"}})
        return new


class ConfigError(ReproBuildError):
    """pyproject.toml, ``[tool.repro-build]`` or Dockerfile.base is invalid."""


class ToolError(ReproBuildError):
    """An external tool (uv, git, docker, skopeo) is missing or failed."""


class LockError(ReproBuildError):
    """Resolving or checking a lock failed."""


class StaleLockError(LockError):
    """A lock exists but no longer matches its inputs (``lock --check``)."""

    exit_code = 1


class DigestMismatchError(ReproBuildError):
    """Bytes from outside did not match the digest they were pinned by."""


class DownloadError(ReproBuildError):
    """Downloading a pinned file (a wheel, a ``.deb``, an index) failed: unreachable, refused or too slow."""


class OCIError(ReproBuildError):
    """Reading, writing or validating an OCI artifact failed."""


class RegistryError(OCIError):
    """Talking to an OCI distribution registry failed."""


class EngineError(ReproBuildError):
    """Talking to the Docker engine failed."""


class WheelError(ReproBuildError):
    """Building or canonicalising a wheel or sdist failed."""


class BaseImageError(ReproBuildError):
    """Resolving, fetching or building a base image failed."""
