"""One error hierarchy for the whole library.

Only the CLI prints or exits. Library code raises a :class:`ReproBuildError` (or a subclass) whose
``message`` says what failed and where, and whose ``hint`` says what to do. The CLI renders it as::

    error: <message>

    hint: <hint>

and exits with :attr:`ReproBuildError.exit_code` (2 = bad input or environment; 1 is reserved for a
check that ran and found a difference, e.g. ``lock --check`` or ``verify``).

Each package raises its own subclass (``config`` :class:`ConfigError`, ``lock`` :class:`LockError`,
``oci`` :class:`OCIError`, ``image`` :class:`ImageError`, ``manifest`` :class:`ManifestError`, …), or
the class of what actually failed (a tool, the engine, a digest); the bare :class:`ReproBuildError` is
never raised. A library's exceptions are caught by their real types at the call that can raise them,
so a bug in repro-build surfaces as a traceback instead of being reported as bad input.
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

    def for_command(self, command: str) -> ReproBuildError:
        """This error as ``repro-build <command>`` reports it: itself, unless its hint depends on the
        command (a missing mirror names the command's own option)."""
        del command
        return self

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


class AttestError(ReproBuildError):
    """Making, attaching or reading an SBOM or a provenance statement failed."""


class ImageError(ReproBuildError):
    """Assembling an image from a base, wheels and project files failed."""


class ManifestError(ReproBuildError):
    """A build manifest is unreadable, of an unknown schema or inconsistent, or checking against it failed."""


class DockerfileError(ReproBuildError):
    """Writing a Dockerfile or a Docker build context for a target failed."""


class TemplateError(ReproBuildError):
    """repro-build's own file templates are missing or do not match the code that fills them."""


class UsageError(ReproBuildError):
    """The command line combines options that do not go together."""
