"""`disfer backup DEST` (a consistent copy while the app runs) and `disfer upgrade` (migrate)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("backup", help="a consistent copy of the store, taken while others keep working")
    p.add_argument("dest", help="the new file to write (never overwritten); open it with --db to restore")
    p.set_defaults(func=_backup, read_only=True)
    p = sub.add_parser("upgrade", help="bring the store's schema up to date (reading commands never do)")
    p.set_defaults(func=_upgrade)


def _backup(args) -> int:
    dest = args.store.backup(args.dest)
    print(f"backup of {args.store.path} written to {dest} (schema {args.store.schema_version()})")
    return 0


def _upgrade(args) -> int:
    print(f"{args.store.path}: schema {args.store.schema_version()}")
    return 0
