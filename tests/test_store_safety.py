"""The store refuses what is not ours, never creates or changes a file for a reading command, reads
archived (read-only) stores, and turns a damaged file into one clear error."""

from __future__ import annotations

import os
import threading

import duckdb
import pytest

from disfer.errors import StoreError
from disfer.store import CONNECT_CONFIG, Store


def _bytes(path) -> bytes:
    return path.read_bytes()


@pytest.fixture()
def foreign(tmp_path):
    path = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(path), config=CONNECT_CONFIG)
    con.execute("CREATE TABLE sources (id INTEGER, url TEXT)")
    con.execute("INSERT INTO sources VALUES (1, 'https://example.org')")
    con.close()
    return path


@pytest.mark.parametrize("read_only", [False, True])
def test_a_foreign_duckdb_file_is_refused_untouched(foreign, read_only):
    before = _bytes(foreign)
    with pytest.raises(StoreError, match="not a DisFER Studio store"):
        Store(foreign, read_only=read_only).schema_version()
    assert _bytes(foreign) == before
    con = duckdb.connect(str(foreign), read_only=True, config=CONNECT_CONFIG)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    con.close()
    assert tables == {"sources"}


def test_reading_a_missing_store_creates_nothing(tmp_path):
    path = tmp_path / "no" / "such" / "store.duckdb"
    with pytest.raises(StoreError, match="no such store"):
        Store(path, read_only=True).schema_version()
    assert not (tmp_path / "no").exists()


def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.duckdb"
    os.mkfifo(fifo)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_raises(lambda: Store(fifo).schema_version())),
                              daemon=True)
    worker.start()
    worker.join(10)
    assert outcome and "not a regular file" in outcome[0]


def _raises(fn) -> str:
    try:
        fn()
    except StoreError as err:
        return str(err)
    return "no error"


def test_a_store_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(StoreError, match="not a folder"):
        Store(blocker / "store.duckdb").schema_version()
    assert blocker.read_text() == "a file, not a folder"


def test_an_archived_store_reads_and_refuses_writes(tmp_path, monkeypatch):
    path = tmp_path / "archived.duckdb"
    store = Store(path)
    with store.write() as con:
        con.execute("INSERT INTO study_meta VALUES ('study_kind', 'real')")
    before = _bytes(path)
    # As root every file is writable, so the test stands in for a file the user may not write.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if (str(p) == str(path) and mode == os.W_OK)
                        else real_access(p, mode))
    archived = Store(path)
    with archived.read() as con:
        assert con.execute("SELECT value FROM study_meta").fetchone()[0] == "real"
    with pytest.raises(StoreError, match="read-only"):
        with archived.write() as con:
            con.execute("INSERT INTO study_meta VALUES ('x', 'y')")
    assert _bytes(path) == before


def test_read_only_store_opens_without_migrating(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).schema_version()
    before = _bytes(path)
    ro = Store(path, read_only=True)
    assert ro.schema_version() == Store(path).schema_version()
    with pytest.raises(StoreError, match="read-only"):
        with ro.write():
            pass
    assert _bytes(path) == before


def test_a_store_cut_in_half_gives_one_clear_error(tmp_path):
    path = tmp_path / "whole.duckdb"
    store = Store(path)
    with store.write() as con:
        con.execute("INSERT INTO sources (source_id, dataset, original_index, pixels) "
                    "SELECT i, 'x', i, repeat('a', 2304)::BLOB FROM range(20000) t(i)")
    cut = tmp_path / "cut.duckdb"
    data = _bytes(path)
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="cannot be read|cannot open"):
        with Store(cut, read_only=True).read() as con:
            con.execute("SELECT sum(octet_length(pixels)) FROM sources").fetchall()


def test_backup_while_another_thread_writes_restores_whole(tmp_path):
    store = Store(tmp_path / "live.duckdb")
    with store.write() as con:
        con.execute("INSERT INTO study_meta VALUES ('study_kind', 'real')")
    stop = threading.Event()

    def keep_writing() -> None:
        i = 0
        while not stop.is_set():
            with store.write() as con:  # two rows per transaction: a backup holds both or neither
                con.execute("INSERT INTO study_meta VALUES (?, 'a'), (?, 'b')", [f"a{i}", f"b{i}"])
            i += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        copies = [store.backup(tmp_path / f"backup-{k}.duckdb") for k in range(3)]
    finally:
        stop.set()
        writer.join()
    for copy in copies:
        restored = Store(copy)
        with restored.read() as con:
            keys = [r[0] for r in con.execute("SELECT key FROM study_meta").fetchall()]
        assert "study_kind" in keys
        assert sum(k.startswith("a") for k in keys) == sum(k.startswith("b") for k in keys)
        assert restored.schema_version() == store.schema_version()
        with restored.write() as con:  # the restored store keeps working: sequences carried over
            con.execute("INSERT INTO runs (kind) VALUES ('check')")
    with pytest.raises(StoreError, match="never overwrites"):
        store.backup(copies[0])
