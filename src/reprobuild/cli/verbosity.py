"""``-v``/``-q`` and the command names: how much goes to stderr, and a did-you-mean for a mistyped command.

``-q`` silences logs and progress; ``-v`` adds ``debug:`` lines from the library's loggers (each external
command repro-build runs, with its duration). Library modules log with :mod:`logging` under the
``reprobuild`` logger and never print; only the CLI attaches a handler.
"""

from __future__ import annotations

import difflib
import logging
import sys
from collections.abc import Sequence

LOGGER = "reprobuild"


class _Prefix(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"debug: {record.getMessage()}"


def configure(verbose: int, quiet: bool) -> None:
    """Attach one stderr handler to the ``reprobuild`` logger: DEBUG with ``-v``, nothing otherwise."""
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, "_repro_build_cli", False):
            logger.removeHandler(handler)
    if verbose and not quiet:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Prefix())
        handler._repro_build_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    else:
        logger.setLevel(logging.WARNING)


def command_word(argv: Sequence[str]) -> str | None:
    """The first word that is not an option (the top-level options take no values)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
        if word in ("-h", "--help", "--version"):
            return None
    return None


def unknown_command(argv: Sequence[str], commands: Sequence[str]) -> tuple[str, str] | None:
    """``(message, hint)`` when the command word of ``argv`` is not one of ``commands``, else None."""
    word = command_word(argv)
    if word is None or word in commands:
        return None
    close = difflib.get_close_matches(word, commands, n=1, cutoff=0.6)
    if close:
        return f"unknown command {word!r}", f"did you mean `repro-build {close[0]}`?"
    return f"unknown command {word!r}", f"the commands are: {', '.join(commands)} (`repro-build --help`)"
