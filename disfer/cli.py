"""The `disfer` command line. Each area of the package registers its own sub-commands.

Global options come before the command: `disfer --db PATH [--quiet] COMMAND ...`.
A DisferError (bad input, bad option, busy or foreign store) prints one line on stderr and exits 2.

Every command module is imported to build the parser, so none of them imports a heavy library
(torch, pandas, the analysis) at module level: handlers import what they need, and a command
whose options come from a heavy module declares them with `arguments=` (see CommandParser).
`disfer info` or `disfer curate set` thus never pays for torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from disfer.errors import DisferError
from disfer.progress import set_quiet
from disfer.store import Store, default_db_path

# Modules with a `register(subparsers)` function; each adds its commands with
# `set_defaults(func=handler)`, and handler(args) receives `args.store` (a Store). A command that
# only reads adds `read_only=True`: its store is opened read-only, never created or migrated.
COMMAND_MODULES = (
    "disfer.commands.data",        # ingest, build, playlists, votes, export-stimuli, info
    "disfer.commands.models",      # models, predict, evaluate, saliency
    "disfer.commands.analysis",    # report, predictions import
    "disfer.commands.curation",    # curate, export
    "disfer.commands.demo",        # demo
    "disfer.commands.finetune",    # finetune
    "disfer.commands.store",       # backup, upgrade
)


class CommandParser(argparse.ArgumentParser):
    """A parser that can declare its arguments on first use: `sub.add_parser(name, arguments=fn)`.

    `fn(parser)` runs once, just before this command is parsed or its help is shown, so options
    whose choices and defaults live in a heavy module (`disfer finetune`'s come with torch) cost
    nothing to the other commands.
    """

    def __init__(self, *args, arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._arguments = arguments

    def _declare(self) -> None:
        if self._arguments is not None:
            declare, self._arguments = self._arguments, None
            declare(self)

    def parse_known_args(self, args=None, namespace=None):
        self._declare()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._declare()
        return super().format_usage()

    def format_help(self) -> str:
        self._declare()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="disfer", description="DisFER Studio: humans vs FER models.")
    parser.add_argument("--db", help=f"store file (default: $DISFER_DB or {default_db_path()})")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    set_quiet(args.quiet)
    args.store = Store(args.db, read_only=getattr(args, "read_only", False))
    try:
        result = args.func(args)
    except DisferError as err:
        print(f"disfer: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `disfer ... | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("disfer: interrupted; nothing was written by the unfinished step", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
