"""Build the DisFER stimulus set: sample sources stratified by label, render every version of each.

The paper's study is `build_study(store, per_class=12, seed=N, split="PublicTest")`: 84 faces x
(original + 3 distortions x 3 levels) = 840 stimuli. `per_class=None` takes every face (e.g. all
35,887), rendered in chunks of sources inside one transaction, so memory does not grow with the
number of faces.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import numpy as np
import pyarrow as pa

from disfer.data.distortions import DISTORTIONS, conditions, stimulus_id, stimulus_seed
from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.images import N_PIXELS, SIZE
from disfer.progress import Progress, ProgressFn
from disfer.runs import record_run
from disfer.store import Store, registered

CHUNK_SOURCES = 2048
# A build is ONE transaction, yet its memory must not grow with the number of stimuli. DuckDB pins
# a transaction's rows appended statement by statement, but a single INSERT that streams its rows
# (an Arrow RecordBatchReader fed by a generator) is written out row group by row group. The
# memory cap keeps DuckDB's buffer pool from caching those blocks up to 80% of RAM; one thread
# makes the generator (and so the progress callback) run in the caller's thread.
BULK_SETTINGS = {"memory_limit": "512MB", "threads": "1"}


@contextmanager
def bulk_insert_settings(con) -> Iterator[None]:
    """DuckDB settings for one streaming bulk insert on this database, restored afterwards."""
    previous = {name: con.execute("SELECT current_setting(?)", [name]).fetchall()[0][0]
                for name in BULK_SETTINGS}
    for name, value in BULK_SETTINGS.items():
        con.execute(f"SET {name} = '{value}'")  # names and values are constants, not user input
    try:
        yield
    finally:
        for name, value in previous.items():
            try:
                con.execute(f"SET {name} = '{value}'")  # DuckDB's own earlier value
            except duckdb.Error:
                pass  # the connection is closing after a failure anyway


def sample_sources(store: Store, per_class: int | None = 12, seed: int = 0,
                   split: str | None = None) -> list[int]:
    """Source ids of the study, sorted: `per_class` faces of each emotion drawn with `seed`.

    Only faces with pixels and a label qualify (vote-only FERPlus rows do not). `per_class=None`
    takes every qualifying face.
    """
    if per_class is not None and per_class < 1:
        raise ConfigError(f"--per-class must be at least 1, not {per_class}")
    with store.read() as con:
        where = "pixels IS NOT NULL AND original_label IS NOT NULL"
        params: list = []
        if split is not None:
            where += " AND split = ?"
            params.append(split)
        df = con.execute(f"SELECT source_id, original_label FROM sources WHERE {where} ORDER BY source_id",
                         params).df()
        if df.empty:
            splits = [r[0] for r in con.execute(
                "SELECT DISTINCT split FROM sources WHERE pixels IS NOT NULL AND split IS NOT NULL"
                " ORDER BY 1").fetchall()]
            if split is not None and splits:
                raise ConfigError(f"no faces in split {split!r} (the store has: {', '.join(splits)})")
            raise ConfigError("the store has no faces to build from; run `disfer ingest ...` first")
    if per_class is None:
        return sorted(df["source_id"].tolist())
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for emotion in EMOTIONS:
        ids = df.loc[df["original_label"] == emotion, "source_id"].to_numpy()
        if len(ids) < per_class:
            where_txt = f" in split {split!r}" if split else ""
            raise ConfigError(f"only {len(ids)} {emotion} faces{where_txt}, fewer than --per-class "
                              f"{per_class}; lower --per-class or choose another split")
        chosen.extend(rng.choice(ids, size=per_class, replace=False).tolist())
    return sorted(int(i) for i in chosen)


STIMULI_SCHEMA = pa.schema([("stimulus_id", pa.string()), ("source_id", pa.int32()),
                            ("distortion", pa.string()), ("level", pa.int32()), ("param", pa.float64()),
                            ("seed", pa.int64()), ("pixels", pa.binary())])


def render_sources(source_ids: np.ndarray, faces: np.ndarray, seed: int,
                   versions: list[tuple[str, int, float | None]]) -> pa.Table:
    """Every version of every face as the rows of the `stimuli` table (an Arrow table)."""
    if len(source_ids) == 0:
        return STIMULI_SCHEMA.empty_table()
    n = len(source_ids) * len(versions)
    out = np.empty((n, N_PIXELS), dtype=np.uint8)
    ids, src, dist, lev, par, seeds = [], [], [], [], [], []
    k = 0
    for sid, face in zip(source_ids.tolist(), faces, strict=True):
        for name, level, param in versions:
            s = stimulus_seed(seed, sid, name, level)
            fn = DISTORTIONS[name].fn
            out[k] = fn(face, param, np.random.default_rng(s)).reshape(-1)
            ids.append(stimulus_id(sid, name, level))
            src.append(sid)
            dist.append(name)
            lev.append(level)
            par.append(param)
            seeds.append(s)
            k += 1
    blobs = pa.FixedSizeBinaryArray.from_buffers(pa.binary(N_PIXELS), n, [None, pa.py_buffer(out)])
    return pa.table({
        "stimulus_id": pa.array(ids, pa.string()), "source_id": pa.array(src, pa.int32()),
        "distortion": pa.array(dist, pa.string()), "level": pa.array(lev, pa.int32()),
        "param": pa.array(par, pa.float64()), "seed": pa.array(seeds, pa.int64()),
        "pixels": blobs.cast(pa.binary()),
    }, schema=STIMULI_SCHEMA)


def build_study(store: Store, per_class: int | None = 12, seed: int = 0, split: str | None = None,
                progress: ProgressFn | None = None, levels: dict[str, tuple[float, ...]] | None = None,
                replace: bool = False) -> int:
    """Sample the study's faces and render all their versions into `stimuli`; returns the count.

    Refuses when the store already has stimuli, unless `replace` and no votes exist yet (a
    rebuild drops the playlists and predictions that referred to the old stimuli, in the same
    transaction as it writes the new stimuli).
    """
    versions = conditions(levels)
    with store.read() as con:
        n_stimuli = con.execute("SELECT count(*) FROM stimuli").fetchall()[0][0]
        n_votes = con.execute("SELECT count(*) FROM votes").fetchall()[0][0]
    if n_stimuli and not replace:
        raise ConfigError(f"{store.path}: the store already has {n_stimuli:,} stimuli; pass --replace "
                          f"to rebuild them (allowed until votes are imported)")
    if n_stimuli and n_votes:
        raise ConfigError(f"{store.path}: cannot rebuild: {n_votes:,} votes refer to the current stimuli")
    source_ids = np.asarray(sample_sources(store, per_class, seed, split), dtype=np.int64)

    config = {"per_class": per_class, "seed": seed, "split": split,
              "levels": {name: [p for d, _, p in versions if d == name]
                         for name in dict.fromkeys(d for d, _, _ in versions) if name != "original"},
              "sources": len(source_ids), "stimuli": len(source_ids) * len(versions)}

    with tempfile.TemporaryFile() as spill:
        _spill_faces(store, source_ids, spill)

        def write(con) -> int:
            # The old study goes in the same transaction as the new one arrives: a failure or a
            # kill at any point leaves stimuli, playlists and predictions wholly as they were.
            if con.execute("SELECT count(*) FROM stimuli").fetchall()[0][0]:
                if not replace:   # another build landed since the check above
                    raise ConfigError(f"{store.path}: the store already has stimuli; pass --replace")
                _empty_study(con, store)
            with bulk_insert_settings(con), \
                    Progress(config["stimuli"], "rendering stimuli", progress, unit="stim") as bar:
                _insert_stimuli(con, _render_batches(spill, source_ids, seed, versions, bar))
            _record_build(con, config)
            return config["stimuli"]

        return store.write_retrying(write)


def _empty_study(con, store: Store) -> None:
    """Delete the stimuli and every row that refers to them, inside the caller's transaction.

    DuckDB refuses to delete a row whose key a referring row deleted in the same transaction still
    names (its foreign-key limitation: the referring index is cleaned only at commit). So a table
    that refers to `stimuli` and has rows is dropped and created again from its own DDL, with its
    indexes; a table with no rows (votes, checked here again) holds no key and stays.
    """
    n_votes = con.execute("SELECT count(*) FROM votes").fetchall()[0][0]
    if n_votes:
        raise ConfigError(f"{store.path}: cannot rebuild: {n_votes:,} votes refer to the current stimuli")
    referrers = [r[0] for r in con.execute(
        "SELECT DISTINCT table_name FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY'"
        " AND referenced_table = 'stimuli' AND database_name = current_database()"
        " AND schema_name = 'main' ORDER BY 1").fetchall()]
    for table in referrers:
        quoted = '"' + table.replace('"', '""') + '"'   # an identifier cannot be a parameter
        if con.execute(f"SELECT count(*) FROM {quoted}").fetchall()[0][0] == 0:
            continue
        ddl = [con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'"
                           " AND database_name = current_database()", [table]).fetchall()[0][0]]
        ddl += [r[0] for r in con.execute(
            "SELECT sql FROM duckdb_indexes() WHERE table_name = ? AND schema_name = 'main'"
            " AND database_name = current_database() AND sql IS NOT NULL ORDER BY index_name",
            [table]).fetchall()]
        con.execute(f"DROP TABLE {quoted}")
        for statement in ddl:
            con.execute(statement)
    con.execute("DELETE FROM stimuli")


def _insert_stimuli(con, batches) -> None:
    """Stream record batches into `stimuli` with one INSERT (see BULK_SETTINGS)."""
    failed: list[BaseException] = []

    def watched():
        try:
            yield from batches
        except BaseException as err:
            failed.append(err)
            raise

    reader = pa.RecordBatchReader.from_batches(STIMULI_SCHEMA, watched())
    try:
        with registered(con, new_stimuli=reader):
            con.execute("INSERT INTO stimuli (stimulus_id, source_id, distortion, level, param,"
                        " seed, pixels) SELECT * FROM new_stimuli")
    except duckdb.Error:
        # DuckDB wraps an error of the generator (and the aborted transaction then fails the
        # view's unregistering): the generator's own error is the one to report, and it must not
        # look like a write conflict, which would be retried.
        if failed:
            raise failed[0] from None
        raise


def _spill_faces(store: Store, source_ids: np.ndarray, spill) -> None:
    """Copy the chosen faces (sorted ids) into a temporary file, 2,304 bytes each, in id order."""
    with store.read() as con:
        for start in range(0, len(source_ids), CHUNK_SOURCES):
            chunk = pa.table({"source_id": pa.array(source_ids[start:start + CHUNK_SOURCES], pa.int32())})
            con.register("chunk_ids", chunk)
            rows = con.execute("SELECT s.source_id, s.pixels FROM sources s JOIN chunk_ids c"
                               " USING (source_id) ORDER BY s.source_id").fetchall()
            con.unregister("chunk_ids")
            spill.write(b"".join(r[1] for r in rows))


def _render_batches(spill, source_ids: np.ndarray, seed: int, versions, bar: Progress):
    """Record batches of rendered stimuli, one chunk of faces at a time (a re-run starts over)."""
    spill.seek(0)
    for start in range(0, len(source_ids), CHUNK_SOURCES):
        ids = source_ids[start:start + CHUNK_SOURCES]
        faces = np.frombuffer(spill.read(len(ids) * N_PIXELS), np.uint8).reshape(len(ids), SIZE, SIZE)
        table = render_sources(ids, faces, seed, versions)
        bar.update(table.num_rows)
        yield from table.to_batches()


def _record_build(con, config: dict) -> None:
    con.execute("INSERT OR REPLACE INTO study_meta VALUES ('build', ?)", [json.dumps(config)])
    con.execute("INSERT INTO study_meta VALUES ('study_kind', 'real') ON CONFLICT DO NOTHING")
    record_run(con, "build", config, {"stimuli": config["stimuli"]})
