"""Everything ``verify`` takes from a build manifest is data: validated as a name before it is used.

A manifest is input from whoever handed it over (a CI artifact, a pull request, a download), so no
value in it may become a path, a command-line option or a directory outside the rebuild's own
temporary tree. Each helper here checks one kind of value and raises :class:`ManifestError` naming
the manifest, the field and the value (escaped), with a hint; :mod:`reprobuild.manifest.schema` runs
them on every field they fit while it reads a manifest, before ``verify`` touches the repository, the
cache or the network.

- wheel file names: PEP 427 names (``packaging.utils.parse_wheel_filename``) made only of the
  characters such names can hold, so never ``/``, ``..`` or an absolute path;
- digests: ``sha256:`` + 64 lowercase hex (bare hex for the wheel pins written by older versions);
- commits: 40 (SHA-1) or 64 (SHA-256) lowercase hex, never an option such as ``--orphan``;
- targets: the config's target-name rule (``[a-z0-9][a-z0-9_-]*``);
- the project path: relative, ``/``-separated, no ``..``; :func:`resolve_inside` then resolves it
  (symlinks included) inside the checkout and refuses anything that lands outside.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from reprobuild.errors import ManifestError
from reprobuild.oci.digest import SHA256_HEX_RE

#: Characters a wheel file name can hold: the escaped distribution name (``[A-Za-z0-9_.]``), a PEP 440
#: version (adds ``+`` and ``!``), the build tag and the compatibility tags (``_``, ``.``), and ``-``.
_WHEEL_CHARS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*\.whl\Z")
#: A full git object id: SHA-1 (40 hex digits) or SHA-256 (64) repositories.
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_TARGET = re.compile(r"^[a-z0-9][a-z0-9_-]*\Z")
#: A path segment: not empty, ``.`` or ``..``; no control character or backslash (resolve_inside does the rest).
_SEGMENT = re.compile(r"^(?!\.{1,2}\Z)[^\x00-\x1f\x7f\\]+\Z")
HINT = "the manifest was edited or is hostile; use the manifest `repro-build image` wrote"


def refuse(path: Path, field: str, value: object, rule: str) -> ManifestError:
    return ManifestError(f"{path}: {field} is {value!r}, which is not {rule}", hint=HINT)


def wheel_filename(value: object, *, path: Path, field: str) -> str:
    """``value`` if it is a plain wheel file name (no directory part), else :class:`ManifestError`."""
    if not isinstance(value, str) or len(value) > 255 or not _WHEEL_CHARS.match(value) or ".." in value:
        raise refuse(path, field, value, "a wheel file name")
    try:
        parse_wheel_filename(value)
    except InvalidWheelFilename as e:
        raise refuse(path, field, value, f"a wheel file name ({e})") from e
    return value


def sha256_hex(value: object, *, path: Path, field: str, prefixed: bool = True) -> str:
    """The 64 hex digits of a ``sha256:<hex>`` value (bare hex too unless ``prefixed`` is required)."""
    text = value if isinstance(value, str) else ""
    hex_ = text.removeprefix("sha256:")
    if not SHA256_HEX_RE.match(hex_) or (prefixed and hex_ == text):
        raise refuse(path, field, value, "a sha256 digest (`sha256:` and 64 lowercase hex digits)")
    return hex_


def is_commit_id(value: object) -> bool:
    """Whether ``value`` is a full git object id, all of it (no newline after it, no short name)."""
    return isinstance(value, str) and _COMMIT.fullmatch(value) is not None


def commit_id(value: object, *, path: Path, field: str = "source.commit") -> str:
    """A full git object id (what ``repro-build image`` records)."""
    if not isinstance(value, str) or not is_commit_id(value):
        raise refuse(path, field, value, "a full git commit id (40 or 64 lowercase hex digits)")
    return value


def is_target_name(value: object) -> bool:
    """Whether ``value`` is a target name: lowercase letters, digits, ``-`` and ``_``, first a letter or digit
    (one path segment, no dot: ``build/<target>/``, ``repro-locks/<target>.txt``)."""
    return isinstance(value, str) and _TARGET.match(value) is not None


def target_name(value: object, *, path: Path, field: str = "target") -> str:
    """A target name as the config allows them."""
    if not isinstance(value, str) or not is_target_name(value):
        raise refuse(path, field, value, "a target name (lowercase letters, digits, `-`, `_`)")
    return value


def project_path(value: object, *, path: Path, field: str = "project.path") -> PurePosixPath:
    """The project directory relative to the repository root (``""`` is the root itself)."""
    if value in (None, ""):
        return PurePosixPath()
    if not isinstance(value, str) or len(value) > 4096:
        raise refuse(path, field, value, "a relative directory")
    parts = value.split("/")
    if value.startswith("/") or not all(_SEGMENT.match(p) for p in parts):
        raise refuse(path, field, value, "a relative directory inside the repository (no `..`, no absolute path)")
    return PurePosixPath(*parts)


def resolve_inside(root: Path, relative: PurePosixPath, *, path: Path, field: str = "project.path") -> Path:
    """``root / relative`` with symlinks resolved, refused unless it is ``root`` or below it."""
    base = root.resolve()
    resolved = (base / relative).resolve()
    if resolved != base and not resolved.is_relative_to(base):
        raise ManifestError(
            f"{path}: {field} {relative.as_posix()!r} leads outside the checked-out commit (to {resolved})",
            hint="a symlink in the commit points elsewhere; verify rebuilds only what the commit holds",
        )
    if not resolved.is_dir():
        raise ManifestError(
            f"{path}: {field} {relative.as_posix()!r} is not a directory in the recorded commit",
            hint=HINT,
        )
    return resolved
