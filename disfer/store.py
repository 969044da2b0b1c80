"""The DuckDB store: the only module that opens connections.

DuckDB admits one writing *process* per file, so a running dashboard and the CLI must take turns:
connections live only as long as one operation, and opening retries on a lock conflict until
DISFER_LOCK_TIMEOUT seconds (default 60) have passed, then names the process that holds the file.
Within one process all connections share one database instance (DuckDB's instance cache), so
threads write concurrently; a write-write conflict on the same row is retried too.

Every write goes through `Store.write()`: one transaction, committed whole or rolled back, and it
bumps the counters that the dashboard uses as its cache keys (see `Store.write`'s `scope`).
"""

from __future__ import annotations

import atexit
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb

from disfer.errors import StoreError, StoreLockedError

DEFAULT_DB = Path("data") / "disfer.duckdb"
# What each scope of a write bumps (Store.write); 'marks' bumps nothing.
WRITE_SCOPES = {
    "all": "UPDATE store_state SET change_counter = change_counter + 1, study_counter = study_counter + 1",
    "curation": "UPDATE store_state SET change_counter = change_counter + 1",
    "marks": "",
}
# Every connection is opened with these settings. DuckDB 2.0, replaying the WAL of a transaction
# that recreated a table (build --replace), looks up `get_current_timestamp` before its statically
# linked core_functions are registered, and with auto-install on it tries to download them (and
# fails offline: the store would not open). With auto-install off it loads the built-in copy.
# It also holds the rule that nothing is downloaded at run time.
CONNECT_CONFIG = {"autoinstall_known_extensions": False}

_LOCK_HINT = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")
# One migration pass per path and process; later opens skip straight to work.
_migrated: set[str] = set()
_migrate_lock = threading.Lock()
# Opening the first and closing the last connection of a file create and destroy DuckDB's database
# instance. Done by two threads at once, a new instance can open the file while the old one closes
# its handle, and closing any handle drops this process's file lock (POSIX locks are per process):
# another process then writes beside us and the file is corrupted. So connect and close take turns.
_instance_lock = threading.Lock()


class _KeepOpen:
    """One spare connection to a file, held for `idle` seconds after the last operation of this
    process on it. While it is held, DuckDB's instance stays open, so the next operation's connect
    costs well under a millisecond instead of opening the file (tens of ms on a study store) and
    the last close does not checkpoint every time. After `idle` quiet seconds it is closed, and
    another process (the CLI) can take its turn. Used by the dashboard's server, whose sessions
    (the rating page's participants above all) make many small operations a second."""

    _held: dict[str, _KeepOpen] = {}
    _lock = threading.Lock()

    def __init__(self, path: Path, idle: float):
        self.path, self.idle = path, idle
        self.last_used = time.monotonic()
        self.con: duckdb.DuckDBPyConnection | None = None

    @classmethod
    def touch(cls, path: Path, idle: float) -> None:
        """Called with an operation's connection open: hold a spare one from now on."""
        key = str(path)
        with cls._lock:
            keeper = cls._held.get(key)
            if keeper is not None:
                keeper.last_used = time.monotonic()
                return
            keeper = cls._held[key] = cls(path, idle)
        with _instance_lock:
            keeper.con = duckdb.connect(key, config=CONNECT_CONFIG)  # the instance is open: this only adds a handle
        threading.Thread(target=keeper._release_when_idle, daemon=True, name="disfer-keep-open").start()

    @classmethod
    def release_all(cls) -> None:
        """At exit: close what is held (DuckDB complains of a connection left open at exit)."""
        with cls._lock:
            held = list(cls._held.values())
            cls._held.clear()
        for keeper in held:
            with _instance_lock:
                if keeper.con is not None:
                    keeper.con.close()

    def _release_when_idle(self) -> None:
        while True:
            time.sleep(max(0.05, self.last_used + self.idle - time.monotonic()))
            with self._lock:
                if time.monotonic() - self.last_used < self.idle:
                    continue
                if self._held.get(str(self.path)) is not self:
                    return  # released at exit
                del self._held[str(self.path)]
            with _instance_lock:
                self.con.close()
            return


atexit.register(_KeepOpen.release_all)


def default_db_path() -> Path:
    return Path(os.environ.get("DISFER_DB") or DEFAULT_DB)


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file in disfer/sql/migrations, in order."""
    folder = resources.files("disfer") / "sql" / "migrations"
    found = []
    for entry in folder.iterdir():
        m = re.match(r"(\d+)_(.+)\.sql$", entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text()))
    return sorted(found)


def latest_version() -> int:
    return migrations()[-1][0]


# What DuckDB raises when the file itself is damaged (our own SQL errors are not among them).
_DAMAGED = (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException, duckdb.FatalException)


def _is_lock_conflict(err: Exception) -> bool:
    return isinstance(err, duckdb.IOException) and "lock" in str(err).lower()


def _is_write_conflict(err: Exception) -> bool:
    text = str(err).lower()
    return isinstance(err, duckdb.TransactionException) or "conflict" in text


class Store:
    """A handle on one store file. Cheap to create; holds no connection between operations.

    read_only: for commands that only read (info, report, ...): the file must exist, is opened
    read-only, and is never created, migrated or changed. A file the user may not write (an
    archived study) is opened read-only too, whatever was asked; writing to it is refused.
    A writable store is created when missing, and migrated, only when the file is empty or ours
    (it has our `schema_migrations`): a foreign DuckDB file is refused untouched.
    """

    def __init__(self, path: str | Path | None = None, lock_timeout: float | None = None,
                 read_only: bool = False, keep_open: float = 0.0):
        self.path = Path(path) if path is not None else default_db_path()
        self.lock_timeout = (float(os.environ.get("DISFER_LOCK_TIMEOUT", "60"))
                             if lock_timeout is None else lock_timeout)
        self.read_only = read_only
        # Seconds to keep the file open after an operation (see _KeepOpen); 0: close at once.
        self.keep_open = keep_open

    @property
    def writable(self) -> bool:
        """Whether writes can land (not opened read-only, and the file may be written)."""
        return not self._opens_read_only()

    def _opens_read_only(self) -> bool:
        return self.read_only or (self.path.exists() and not os.access(self.path, os.W_OK))

    def _check_file(self) -> None:
        """Refuse, before DuckDB sees it, what is not a store file (or cannot become one)."""
        path = self.path
        if path.exists() or path.is_symlink():
            if not path.is_file():  # a FIFO would block DuckDB's open forever; a folder is no store
                raise StoreError(f"{path}: not a regular file, so not a store")
            return
        if self.read_only:
            raise StoreError(f"{path}: no such store (this command only reads; nothing was created)")
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise StoreError(f"{path}: cannot create a store here: {parent} is not a folder")

    # -- connections -------------------------------------------------------------------------
    def _open(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.02
        read_only = self._opens_read_only()
        while True:
            try:
                with _instance_lock:
                    return duckdb.connect(str(self.path), read_only=read_only, config=CONNECT_CONFIG)
            except duckdb.IOException as err:
                text = str(err)
                if "not a valid DuckDB database file" in text:
                    raise StoreError(f"{self.path}: not a DuckDB store") from None
                if not _is_lock_conflict(err):
                    raise StoreError(f"{self.path}: cannot open store: {text}") from None
                if time.monotonic() >= deadline:
                    m = _LOCK_HINT.search(text)
                    who = f"process {m.group('pid')} ({m.group('exe')})" if m else "another process"
                    raise StoreLockedError(
                        f"{self.path}: store is busy: {who} has held it for more than "
                        f"{self.lock_timeout:g} s; close it or raise DISFER_LOCK_TIMEOUT"
                    ) from None
                time.sleep(delay * (1 + random.random()))
                # Capped low: trying costs little, and a writer that lets go of the file for a
                # moment (predict between batches) must find us trying.
                delay = min(delay * 1.6, 0.1)
            except duckdb.Error as err:
                # DuckDB's per-process instance cache races when one thread opens the file while
                # another closes the last connection ("already attached"); it passes at once.
                if "already attached" in str(err) and time.monotonic() < deadline:
                    time.sleep(0.005 * (1 + random.random()))
                    continue
                raise StoreError(f"{self.path}: cannot open store: {err}") from None

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self._check_file()
        if not self.path.exists():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(f"{self.path}: cannot create the store's folder: {err.strerror}") from None
        con = self._open()
        try:
            if self._opens_read_only():
                _check_readable(con, self.path)
            else:
                self._ensure_schema(con)
                if self.keep_open > 0:
                    _KeepOpen.touch(self.path, self.keep_open)
            yield con
        except _DAMAGED as err:
            # A damaged file (cut short, overwritten) fails inside a query, not at open.
            raise StoreError(f"{self.path}: the store cannot be read ({type(err).__name__}: "
                             f"{str(err).splitlines()[0]})") from None
        finally:
            with _instance_lock:
                con.close()

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for queries; nothing it does is committed on purpose."""
        with self._connection() as con:
            yield con

    @contextmanager
    def write(self, scope: str = "all") -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction: everything in the block lands, or (on any exception) nothing does.

        scope: what the block may change, for the dashboard's cache keys. 'all' (any table) bumps
        `change_counter` and `study_counter`; 'curation' (curation events and settings only) bumps
        `change_counter` alone, so the dashboard keeps its Study, which reads none of them;
        'marks' (the soft locks' "opened" marks, which nothing cached reads) bumps neither.

        The block may run more than once when a concurrent writer in this process touched the same
        rows (DuckDB's optimistic concurrency); use `write_retrying` for that, which re-runs a
        function. This context manager itself does not retry the block.
        """
        if scope not in WRITE_SCOPES:
            raise ValueError(f"unknown write scope {scope!r} (expected one of {', '.join(WRITE_SCOPES)})")
        if self._opens_read_only():
            raise StoreError(f"{self.path}: the store is read-only ("
                             + ("opened for reading" if self.read_only else "the file is not writable")
                             + "); nothing was written")
        with self._connection() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                if scope != "marks":
                    con.execute(WRITE_SCOPES[scope])
                con.execute("COMMIT")
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                raise

    def write_retrying(self, fn, *args, scope: str = "all", **kwargs):
        """Run fn(con, *args, **kwargs) in one transaction (`write(scope)`), retrying on a
        write-write conflict."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while True:
            try:
                with self.write(scope) as con:
                    return fn(con, *args, **kwargs)
            except duckdb.Error as err:
                if not _is_write_conflict(err) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 1.5, 0.2)

    # -- schema ------------------------------------------------------------------------------
    def _ensure_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        st = os.stat(self.path)
        # Keyed on the inode too: a store deleted and re-created in this process is migrated again.
        key = f"{self.path.resolve()}:{st.st_dev}:{st.st_ino}"
        if key in _migrated:
            return
        with _migrate_lock:
            if key in _migrated:
                return
            upgrade(con, self.path)
            _migrated.add(key)

    def backup(self, dest: str | Path) -> Path:
        """A consistent copy of the store at `dest` (a new file), taken while others keep working:
        one read transaction copies every table (DuckDB's MVCC snapshot), so concurrent writes land
        wholly before or after it. Written beside `dest` and renamed at the end."""
        dest = Path(dest)
        if dest.exists() or dest.is_symlink():
            raise StoreError(f"{dest}: exists; a backup never overwrites a file")
        if not dest.parent.is_dir():
            raise StoreError(f"{dest}: its folder {dest.parent} does not exist")
        partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
        partial.unlink(missing_ok=True)
        try:
            if self._opens_read_only():
                # A read-only connection cannot attach a file to write: copy through a scratch one.
                self._check_file()
                con = duckdb.connect(":memory:", config=CONNECT_CONFIG)
                try:
                    con.execute("ATTACH ? AS source_store (READ_ONLY)", [str(self.path)])
                    _copy_database(con, "source_store", partial)
                finally:
                    con.close()
            else:
                with self.read() as con:
                    _copy_database(con, con.execute("SELECT current_database()").fetchone()[0], partial)
            os.replace(partial, dest)
        except BaseException:
            partial.unlink(missing_ok=True)
            partial.with_name(partial.name + ".wal").unlink(missing_ok=True)
            raise
        return dest

    def schema_version(self) -> int:
        with self.read() as con:
            return int(con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0])

    def change_counter(self) -> int:
        """Bumped by every committed write (but a soft lock's mark); the dashboard's cache key."""
        return self.counters()[0]

    def counters(self) -> tuple[int, int]:
        """(change_counter, study_counter) in one read: the study counter stays still through
        curation's writes (see `write`)."""
        with self.read() as con:
            change, study = con.execute("SELECT change_counter, study_counter FROM store_state").fetchone()
        return int(change), int(study)


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, **views) -> Iterator[duckdb.DuckDBPyConnection]:
    """Expose DataFrames / Arrow tables / readers as SQL views for one block (bulk inserts).

    The views are always unregistered, also on error, so a retried transaction can register again.
    """
    for name, data in views.items():
        con.register(name, data)
    try:
        yield con
    except BaseException:
        # The block's own error is the one to report: a failing unregister (the transaction is
        # already aborted) would hide it, and write_retrying would take "aborted" for a conflict.
        for name in views:
            try:
                con.unregister(name)
            except duckdb.Error:
                pass
        raise
    for name in views:
        con.unregister(name)


def _copy_database(con: duckdb.DuckDBPyConnection, name: str, target: Path) -> None:
    """COPY FROM DATABASE `name` into a new file: one transaction, so one consistent snapshot."""
    con.execute("ATTACH ? AS backup_target", [str(target)])
    try:
        # An identifier cannot be a parameter; the name is quoted, quotes doubled.
        quoted = '"' + name.replace('"', '""') + '"'
        con.execute(f"COPY FROM DATABASE {quoted} TO backup_target")
    finally:
        con.execute("DETACH backup_target")


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_catalog = current_database()").fetchall()}


def _check_readable(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A store opened read-only cannot be migrated: it must be ours and current already."""
    if "schema_migrations" not in _tables(con):
        raise StoreError(f"{path}: not a DisFER Studio store (no schema_migrations table)")
    applied = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
    missing = [name for _, name, _ in migrations() if name not in applied]
    if missing:
        raise StoreError(f"{path}: the store needs upgrading ({', '.join(missing)}), which a reading "
                         "command does not do; run any writing command on it (e.g. disfer upgrade)")


def upgrade(con: duckdb.DuckDBPyConnection, path: Path | str = "store") -> int:
    """Apply every migration the store has not had, each in one transaction, in order.

    Migrations are recognised by name, not by number: a migration added late with a number below
    the store's newest still runs, and a renumbered one (release 0.1's `003_curation` is now
    `002_curation`) is not run twice; its recorded number is brought up to date.
    """
    tables = _tables(con)
    if tables and "schema_migrations" not in tables:
        raise StoreError(f"{path}: not a DisFER Studio store: it holds other tables "
                         f"({', '.join(sorted(tables)[:3])}); nothing was changed")
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
    )
    con.execute("CREATE TABLE IF NOT EXISTS store_state (change_counter BIGINT NOT NULL)")
    if con.execute("SELECT count(*) FROM store_state").fetchone()[0] == 0:
        con.execute("INSERT INTO store_state VALUES (0)")
    applied = dict(con.execute("SELECT name, version FROM schema_migrations").fetchall())
    known = migrations()
    unknown = sorted(set(applied) - {name for _, name, _ in known})
    if unknown:
        raise StoreError(f"{path}: store has migration {unknown[0]!r}, newer than this DisFER Studio "
                         f"(schema {known[-1][0]}); upgrade the software")
    for version, name, sql in known:
        if name in applied:
            if applied[name] != version:
                con.execute("UPDATE schema_migrations SET version = ? WHERE name = ?", [version, name])
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return known[-1][0]
