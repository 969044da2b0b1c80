import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from disfer import store as store_module
from disfer.errors import StoreError, StoreLockedError
from disfer.ledger import current_ground_truth, last_event_id
from disfer.store import CONNECT_CONFIG, Store, latest_version, migrations


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


FIXTURES = Path(__file__).parent / "fixtures"


def _release_0_1_store(path: Path) -> None:
    """A store as release 0.1 wrote it (its migrations 001 and 003, verbatim), with data in it."""
    con = duckdb.connect(str(path), config=CONNECT_CONFIG)
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
    con.execute("CREATE TABLE store_state (change_counter BIGINT NOT NULL)")
    con.execute("INSERT INTO store_state VALUES (7)")
    for version, name in ((1, "init"), (3, "curation")):
        con.execute((FIXTURES / "release_0_1" / f"{version:03d}_{name}.sql").read_text())
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
    con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label, split, pixels) "
                "VALUES (1, 'fer2013', 0, 'anger', 'PublicTest', ?), (2, 'fer2013', 1, 'fear', 'PublicTest', ?)",
                [bytes(2304), bytes(2304)])
    con.execute("INSERT INTO stimuli VALUES ('1-original-0', 1, 'original', 0, NULL, 1, ?)", [bytes(2304)])
    con.execute("INSERT INTO participants VALUES ('p1', 'study', NULL)")
    con.execute("INSERT INTO votes VALUES ('p1', '1-original-0', 'fear', 812, NULL)")
    # ann relabels 1 and undoes it; bob excludes 2; a lead's event without role (0.1 had the column)
    con.execute("INSERT INTO curation_events (source_id, curator, labels, status) VALUES "
                "(1, 'ann', ['fear'], 'relabeled'), (2, 'bob', [], 'excluded')")
    con.execute("INSERT INTO curation_events (source_id, curator, labels, status, undoes) "
                "VALUES (1, 'ann', [], 'undo', 1)")
    con.execute("INSERT INTO curation_events (source_id, curator, labels, status, role) "
                "VALUES (1, 'lee', ['surprise'], 'relabeled', 'lead')")
    con.close()


def test_release_0_1_store_upgrades_with_its_data(tmp_path):
    path = tmp_path / "old.duckdb"
    _release_0_1_store(path)
    store = Store(path)
    assert store.schema_version() == latest_version()
    with store.read() as con:
        names = [r[0] for r in con.execute("SELECT name FROM schema_migrations ORDER BY version").fetchall()]
        assert names == [name for _, name, _ in migrations()]
        assert con.execute("SELECT count(*) FROM votes").fetchone()[0] == 1
        assert con.execute("SELECT change_counter FROM store_state").fetchone()[0] == 7
    gt = current_ground_truth(store).set_index("source_id")
    # Expected by hand: ann's relabel is undone, the lead's resolution stands; bob's exclusion too.
    assert gt.loc[1, "labels"] == ["surprise"] and bool(gt.loc[1, "resolved"])
    assert gt.loc[2, "status"] == "excluded"
    assert last_event_id(store, "ann") is None
    Store(path).schema_version()  # a second open changes nothing
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(migrations())


def test_a_late_migration_runs_even_below_the_newest_version(tmp_path, monkeypatch):
    path = tmp_path / "late.duckdb"
    store = Store(path)
    store.schema_version()
    known = migrations()
    late = (known[-1][0] + 1, "late_table", "CREATE TABLE late_table (x INTEGER);")
    newest = (known[-1][0] + 2, "newest_table", "CREATE TABLE newest_table (x INTEGER);")
    with store.write() as con:  # the store already has the newest one, not the late one
        con.execute(newest[2])
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", list(newest[:2]))
    monkeypatch.setattr(store_module, "migrations", lambda: [*known, late, newest])
    monkeypatch.setattr(store_module, "_migrated", set())
    with Store(path).read() as con:
        assert con.execute("SELECT count(*) FROM late_table").fetchone()[0] == 0


def test_migrations_are_numbered_without_gaps():
    versions = [v for v, _, _ in migrations()]
    assert versions == list(range(1, len(versions) + 1))
    assert len({name for _, name, _ in migrations()}) == len(versions)


def test_not_a_duckdb_file(tmp_path):
    bad = tmp_path / "notes.duckdb"
    bad.write_text("hello, I am not a database")
    with pytest.raises(StoreError, match="not a DuckDB store"):
        Store(bad).schema_version()


def test_lock_wait_names_the_holder(tmp_path):
    path = tmp_path / "busy.duckdb"
    Store(path).schema_version()
    # A plain child interpreter, not multiprocessing's spawn: spawn re-runs the parent's __main__,
    # which after an AppTest in the same session is a dashboard page.
    code = (f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
            "sys.stdin.readline(); c.close()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreLockedError, match=rf"process {holder.pid} "):
            Store(path, lock_timeout=0.5).schema_version()
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(20)


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


def test_a_store_kept_open_lets_other_processes_in_once_idle(tmp_path):
    """The dashboard keeps its store open for a moment after each operation (fast reopening), and
    must then let go so that the CLI can take its turn."""
    import time

    path = tmp_path / "kept.duckdb"
    store = Store(path, keep_open=3.0)
    store.schema_version()
    probe = f"import duckdb; duckdb.connect({str(path)!r}).close(); print('opened')"

    def other_process_opens() -> bool:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
        return out.stdout.strip() == "opened"

    store.schema_version()
    assert not other_process_opens()  # still held: we used it a moment ago
    time.sleep(4.5)
    assert other_process_opens()  # quiet for longer than keep_open: released
    with Store(path, lock_timeout=10).write() as con:  # and we can take it back
        con.execute("INSERT INTO study_meta VALUES ('k', 'v')")
