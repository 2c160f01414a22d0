"""Entry point of the ``repro-build`` command.

Each subcommand lives in its own module under :mod:`reprobuild.cli` and exposes
``register(subparsers)``, which adds a parser whose ``func`` default takes the parsed arguments and
returns the exit code. Only this module turns errors into ``error:``/``hint:`` text and exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from reprobuild import __version__
from reprobuild.cli.output import print_error
from reprobuild.cli.verbosity import command_word, configure, unknown_command
from reprobuild.errors import ReproBuildError

#: Subcommand modules, in the order `--help` lists them.
COMMANDS: tuple[str, ...] = (
    "init",
    "config",
    "lock",
    "wheel",
    "base",
    "image",
    "verify",
    "diff",
    "inspect",
    "copy",
    "dockerfile",
    "doctor",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered, or with ``only`` that one.

    Parsing a command line that names its command needs that command's parser alone, and each module's
    imports cost start-up time; the other subcommands change neither its parsing nor its help text.
    """
    parser = argparse.ArgumentParser(
        prog="repro-build",
        description="Bit-for-bit reproducible wheels and container images for Python and ML projects.",
    )
    parser.add_argument("--version", action="version", version=f"repro-build {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or logs on stderr")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="also log each external command run (uv, git, docker)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # `-q` is accepted after the subcommand too (`repro-build lock -q`); SUPPRESS keeps the top-level value
    # when it is not repeated there.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_parser = sub.add_parser

    def add_parser_with_common(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs["parents"] = [*kwargs.get("parents", []), common]
        return add_parser(name, **kwargs)

    sub.add_parser = add_parser_with_common  # type: ignore[method-assign]
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"reprobuild.cli.{name.replace('-', '_')}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the process exit code (0 ok, 1 check failed, 2 error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    unknown = unknown_command(argv, COMMANDS)
    if unknown is not None:
        print_error(*unknown)
        return 2
    word = command_word(argv)
    parser = build_parser(word if word in COMMANDS else None)
    args = parser.parse_args(argv)
    configure(args.verbose, args.quiet)
    try:
        code: int = args.func(args)
    except ReproBuildError as e:
        # A hint may name how this very command takes an option (a missing mirror's).
        e = e.for_command(" ".join(filter(None, (args.command, getattr(args, "base_command", None)))))
        print_error(e.message, e.hint)
        return e.exit_code
    except KeyboardInterrupt:
        print_error("interrupted", None)
        return 130
    except OSError as e:
        # The environment, not the input: a full disk, a read-only directory, a vanished file.
        if os.environ.get("REPRO_BUILD_TRACEBACK"):
            raise
        where = f" ({e.filename})" if e.filename else ""
        print_error(
            f"{e.strerror or e}{where}",
            "check free space and permissions (set REPRO_BUILD_TRACEBACK=1 to see where it happened)",
        )
        return 2
    except Exception as e:
        if os.environ.get("REPRO_BUILD_TRACEBACK"):
            raise
        print_error(
            f"internal error: {type(e).__name__}: {e}",
            "this is a bug in repro-build; rerun with REPRO_BUILD_TRACEBACK=1 and report the traceback",
        )
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
