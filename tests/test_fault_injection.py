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

from disfer.store import Store

FRACTIONS = (0.25, 0.5, 0.7, 0.9)
DISFER = Path(sys.executable).with_name("disfer")
# Tables whose rows carry a run's bookkeeping, not study data: a killed run may leave its row.
BOOKKEEPING = {"runs", "store_state", "schema_migrations"}


def snapshot(path: Path) -> dict[str, int]:
    """Row count of every table: enough to tell before from after for these commands."""
    con = duckdb.connect(str(path), read_only=True)
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
