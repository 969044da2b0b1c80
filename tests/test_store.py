import multiprocessing as mp
import subprocess
import sys

import duckdb
import pytest

from disfer.errors import StoreError, StoreLockedError
from disfer.store import Store, latest_version


def test_new_store_is_migrated_to_latest(store):
    assert store.schema_version() == latest_version()
    with store.read() as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    for t in ("sources", "stimuli", "playlists", "participants", "votes", "models", "predictions",
              "curation_events", "runs", "schema_migrations"):
        assert t in tables


def test_write_is_one_transaction(store):
    with pytest.raises(RuntimeError):
        with store.write() as con:
            con.execute("INSERT INTO study_meta VALUES (?, ?)", ["k", "v"])
            raise RuntimeError("boom")
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM study_meta").fetchone()[0] == 0
    before = store.change_counter()
    with store.write() as con:
        con.execute("INSERT INTO study_meta VALUES (?, ?)", ["k", "v"])
    assert store.change_counter() == before + 1


def test_older_store_upgrades_in_place(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
    con.close()  # version 0: nothing applied yet
    assert Store(path).schema_version() == latest_version()


def test_not_a_duckdb_file(tmp_path):
    bad = tmp_path / "notes.duckdb"
    bad.write_text("hello, I am not a database")
    with pytest.raises(StoreError, match="not a DuckDB store"):
        Store(bad).schema_version()


def _hold(path, ready, release):
    con = duckdb.connect(path)
    ready.set()
    release.wait(20)
    con.close()


def test_lock_wait_names_the_holder(tmp_path):
    path = tmp_path / "busy.duckdb"
    Store(path).schema_version()
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(path), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(StoreLockedError, match=rf"process {holder.pid} "):
            Store(path, lock_timeout=0.5).schema_version()
    finally:
        release.set()
        holder.join(20)


def test_waits_for_a_short_holder(tmp_path):
    path = tmp_path / "busy2.duckdb"
    Store(path).schema_version()
    code = f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(1.0); c.close()"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with Store(path, lock_timeout=20).write() as con:
        con.execute("INSERT INTO study_meta VALUES (?, ?)", ["after", "wait"])
    proc.wait(10)
    with Store(path).read() as con:
        assert con.execute("SELECT value FROM study_meta WHERE key = ?", ["after"]).fetchone()[0] == "wait"
