"""The machine's apt sources: where the default Debian mirror comes from.

Reads ``/etc/apt/sources.list.d/*.sources`` (deb822 form, ``sources.list(5)`` "DEB822-STYLE FORMAT")
and ``/etc/apt/sources.list`` plus ``/etc/apt/sources.list.d/*.list`` (one-line form). Only
``deb`` entries count; ``Enabled: no`` entries and ``deb-src`` lines are skipped.

The recommended mirror is a time-pinned snapshot archive URL of the form
``<snapshot-mirror>/archive/debian/<YYYYMMDDTHHMMSSZ>``: its ``Release`` never changes, so a lock
made against it stays current. The timestamp is recorded in the base lock.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from reprobuild.base.debian.deb822 import iter_stanzas
from reprobuild.errors import BaseImageError

#: The snapshot archive's time stamp in a mirror URL path (``…/archive/debian/20250520T000000Z``).
_SNAPSHOT_RE = re.compile(r"/(\d{8}T\d{6}Z)(?:/|$)")


#: The commands that take ``--mirror URL`` (a download mirror; the base lock's hashes decide the bytes).
MIRROR_COMMANDS = ("image", "verify", "base build", "base lock")
_CONFIG_KEY = "`mirror` in `[tool.repro-build.debian]`"


class NoAptSourceError(BaseImageError):
    """No mirror was given, and none of this machine's apt sources carries the suite."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(
            message,
            hint
            or "pass `--mirror URL` to "
            + ", ".join(f"`repro-build {c}`" for c in MIRROR_COMMANDS)
            + f" (a time-pinned snapshot archive is recommended), or set {_CONFIG_KEY}",
        )

    def for_command(self, command: str) -> NoAptSourceError:
        """This error with a hint naming how ``repro-build <command>`` takes a mirror."""
        if command in MIRROR_COMMANDS:
            hint = (
                f"pass `--mirror URL` to `repro-build {command}` (a time-pinned snapshot archive is "
                f"recommended), or set {_CONFIG_KEY}"
            )
        else:
            hint = (
                f"set {_CONFIG_KEY} (the base lock records it), or lock the base with "
                "`repro-build base lock --mirror URL`"
            )
        return NoAptSourceError(self.message, hint)


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` source: a mirror URI with its suites and components, and where it was read."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    origin: str


def _split_options(words: list[str]) -> list[str]:
    # One-line form: `deb [arch=amd64 signed-by=/x] URI suite comp...`; the options are not needed.
    if words and words[0].startswith("["):
        while words and not words[0].endswith("]"):
            words = words[1:]
        words = words[1:]
    return words


def parse_one_line(text: str, origin: str) -> list[AptSource]:
    """Parse the one-line ``sources.list`` form; only ``deb`` lines are returned."""
    found: list[AptSource] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, *rest = line.split()
        if kind != "deb":
            continue
        words = _split_options(rest)
        if len(words) < 2:
            raise BaseImageError(
                f"{origin}, line {number}: a `deb` line needs a URI and a suite",
                hint="see sources.list(5)",
            )
        found.append(AptSource(words[0], (words[1],), tuple(words[2:]), f"{origin}:{number}"))
    return found


def parse_deb822(text: str, origin: str) -> list[AptSource]:
    """Parse the deb822 ``.sources`` form; only enabled ``Types: deb`` stanzas are returned."""
    found: list[AptSource] = []
    for index, stanza in enumerate(iter_stanzas(text, origin, comments=True), start=1):
        fields = {k.lower(): v for k, v in stanza.items()}
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").strip().lower() == "no":
            continue
        uris = fields.get("uris", "").split()
        suites = tuple(fields.get("suites", "").split())
        components = tuple(fields.get("components", "").split())
        if not uris or not suites:
            raise BaseImageError(
                f"{origin}, stanza {index}: a deb822 source needs `URIs` and `Suites`",
                hint="see sources.list(5), DEB822-STYLE FORMAT",
            )
        found.extend(AptSource(uri, suites, components, f"{origin} stanza {index}") for uri in uris)
    return found


def machine_sources(root: Path = Path("/")) -> list[AptSource]:
    """All ``deb`` sources of the machine under ``root``, in apt's reading order."""
    etc = root / "etc" / "apt"
    found: list[AptSource] = []
    main_list = etc / "sources.list"
    if main_list.is_file():
        found.extend(parse_one_line(main_list.read_text(errors="replace"), str(main_list)))
    parts = etc / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                found.extend(parse_one_line(path.read_text(errors="replace"), str(path)))
            elif path.suffix == ".sources":
                found.extend(parse_deb822(path.read_text(errors="replace"), str(path)))
    return found


def default_mirror(suite: str, root: Path = Path("/")) -> str:
    """The first machine source that carries ``suite`` (its URI, credentials included if any).

    Raises :class:`BaseImageError` when no configured source carries the suite.
    """
    for source in machine_sources(root):
        if suite in source.suites:
            return source.uri.rstrip("/")
    raise NoAptSourceError(
        f"no apt source on this machine carries the suite `{suite}` "
        f"(read {root / 'etc/apt/sources.list'} and {root / 'etc/apt/sources.list.d'})"
    )


def snapshot_timestamp(url: str) -> str | None:
    """The ``YYYYMMDDTHHMMSSZ`` time stamp of a snapshot archive URL, or None for a live mirror."""
    match = _SNAPSHOT_RE.search(urllib.parse.urlsplit(url).path)
    return match.group(1) if match else None
