"""kill -9 at points through every writing command, then: the store opens, and its tables are
wholly as before or wholly as after the command (a command that commits in steps, `predict`,
keeps whole steps, and the next `predict` completes them).

Each command runs once to the end on a copy to learn its "after" and its duration; then it is
killed on fresh copies at fixed fractions of that duration (4 trials per command, 24 in all).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from tests_support import write_votes_csv

from disfer.store import CONNECT_CONFIG, Store

FRACTIONS = (0.25, 0.5, 0.7, 0.9)
DISFER = Path(sys.executable).with_name("disfer")
# Tables whose rows carry a run's bookkeeping, not study data: a killed run may leave its row.
BOOKKEEPING = {"runs", "store_state", "schema_migrations"}


def snapshot(path: Path) -> dict[str, int]:
    """Row count of every table: enough to tell before from after for these commands."""
    con = duckdb.connect(str(path), read_only=True, config=CONNECT_CONFIG)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE'").fetchall()]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                for t in sorted(tables) if t not in BOOKKEEPING}
    finally:
        con.close()


def run(args: list[str], db: Path, kill_after: float | None = None) -> tuple[int, float]:
    start = time.monotonic()
    proc = subprocess.Popen([str(DISFER), "--quiet", "--db", str(db), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if kill_after is None:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        return 0, time.monotonic() - start
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        return -9, time.monotonic() - start
    return proc.returncode, time.monotonic() - start


@pytest.fixture(scope="module")
def base(tmp_path_factory, _built_study_template) -> dict[str, Path]:
    """Starting stores: empty, and the small built study with a model's predictions."""
    folder = tmp_path_factory.mktemp("faults")
    empty = folder / "empty.duckdb"
    Store(empty).schema_version()
    built = folder / "built.duckdb"
    shutil.copyfile(_built_study_template, built)
    studied = folder / "studied.duckdb"
    shutil.copyfile(_built_study_template, studied)
    run(["predict", "--model", "minixception", "--batch", "64"], studied)
    from conftest import write_fer2013_csv

    return {"empty": empty, "built": built, "studied": studied,
            "fer2013": write_fer2013_csv(folder / "fer.csv", per_emotion=150, splits=("PublicTest", "Training")),
            "votes": write_votes_csv(folder / "votes.csv", studied, participants=60)}


COMMANDS = {
    "ingest": ("empty", lambda b: ["ingest", "fer2013", str(b["fer2013"])]),
    "build --replace": ("studied", lambda b: ["build", "--replace", "--per-class", "all", "--seed", "3"]),
    "votes import": ("studied", lambda b: ["votes", "import", str(b["votes"])]),
    "predict": ("built", lambda b: ["predict", "--model", "minixception", "--batch", "16", "--no-compile"]),
    "finetune": ("studied", lambda b: ["finetune", "--model", "minixception", "--protocol", "paper",
                                       "--distortion", "gaussian_noise", "--epochs", "1", "--batches", "2",
                                       "--per-class", "1", "--device", "cpu"]),
    "curate set": ("studied", lambda b: ["curate", "set", "3", "--labels", "surprise", "--status", "relabeled",
                                         "--curator", "kim"]),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_kill_9_leaves_a_whole_store(command, base, tmp_path):
    start, make_args = COMMANDS[command]
    args = make_args(base)
    before = snapshot(base[start])
    full = tmp_path / "full.duckdb"
    shutil.copyfile(base[start], full)
    _, duration = run(args, full)
    after = snapshot(full)
    assert after != before, f"{command} changed nothing: the trial proves nothing"
    for i, fraction in enumerate(FRACTIONS):
        db = tmp_path / f"killed-{i}.duckdb"
        shutil.copyfile(base[start], db)
        code, _ = run(args, db, kill_after=max(0.2, fraction * duration))
        Store(db).schema_version()  # opens (and recovers its WAL) without error
        state = snapshot(db)
        if command in ("predict", "finetune") and state not in (before, after):
            # Steps that commit on their own: each whole; the next predict completes them.
            run(["predict", "--model", "minixception"], db)
            state = snapshot(db)
            if command == "finetune":
                assert state["models"] in (before["models"], after["models"]), (fraction, state)
                continue
        assert state in (before, after), f"{command} killed at {fraction:.0%} (exit {code}): {state}"


def test_a_store_whose_wal_holds_a_rebuild_opens_offline(base, tmp_path):
    """CI saw it: a kill just after `build --replace` committed left a WAL whose replay made DuckDB
    try to download its own built-in functions; offline, the store would not open at all.

    The rebuild commits while a second handle holds the database open (as the dashboard's store
    does), then the process dies before any checkpoint, so the WAL must be replayed on next open.
    """
    db = tmp_path / "rebuilt.duckdb"
    shutil.copyfile(base["studied"], db)
    before = snapshot(db)
    script = (
        "import os, sys\n"
        "from disfer.store import Store\n"
        "from disfer.data.build import build_study\n"
        f"store = Store({str(db)!r}, keep_open=60)\n"
        "build_study(store, per_class=None, seed=3, replace=True)\n"
        "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    assert Path(f"{db}.wal").stat().st_size > 0, "no WAL left: the trial proves nothing"
    # A fresh process, as the next command would be; no network is needed to open it.
    subprocess.run([sys.executable, "-c", f"from disfer.store import Store; Store({str(db)!r}).schema_version()"],
                   check=True, timeout=120)
    after = snapshot(db)
    # The rebuild is all there: every stored face in its 10 versions, no predictions left.
    assert after["stimuli"] == 10 * before["sources"] != before["stimuli"]
    assert after["predictions"] == 0 < before["predictions"]
