"""The `disfer` command line. Each area of the package registers its own sub-commands.

Global options come before the command: `disfer --db PATH [--quiet] COMMAND ...`.
A DisferError (bad input, bad option, busy or foreign store) prints one line on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from disfer.errors import DisferError
from disfer.progress import set_quiet
from disfer.store import Store, default_db_path

# Modules with a `register(subparsers)` function; each adds its commands with
# `set_defaults(func=handler)`, and handler(args) receives `args.store` (a Store).
COMMAND_MODULES = (
    "disfer.commands.data",        # ingest, build, playlists, votes, export-stimuli, info
    "disfer.commands.models",      # models, predict, evaluate, saliency
    "disfer.commands.analysis",    # report, predictions import
    "disfer.commands.curation",    # curate, export
    "disfer.commands.demo",        # demo
    "disfer.commands.finetune",    # finetune
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="disfer", description="DisFER Studio: humans vs FER models.")
    parser.add_argument("--db", help=f"store file (default: $DISFER_DB or {default_db_path()})")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    set_quiet(args.quiet)
    args.store = Store(args.db) if args.db else Store()
    try:
        result = args.func(args)
    except DisferError as err:
        print(f"disfer: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("disfer: interrupted; nothing was written by the unfinished step", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
