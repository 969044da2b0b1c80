"""The `runs` table: one row per pipeline run (build, predict, finetune, demo), written only here.

Each function works inside the caller's transaction (`with store.write() as con:`), so a run's row
lands together with what the run wrote, or not at all. A long run that may fail halfway (a
fine-tune) starts its row first in its own transaction, so a crash leaves a 'running' or
'failed' row behind; a short one records itself once done.
"""

from __future__ import annotations

import json

STATUSES: tuple[str, ...] = ("running", "done", "failed")


def start_run(con, kind: str, config: dict) -> int:
    """A new 'running' row of `kind` with its configuration; returns its run_id."""
    return int(con.execute("INSERT INTO runs (kind, config) VALUES (?, ?) RETURNING run_id",
                           [kind, json.dumps(config)]).fetchone()[0])


def finish_run(con, run_id: int, status: str, result: dict) -> None:
    """Close a started run as 'done' or 'failed', with its result (figures, or the error)."""
    if status not in STATUSES[1:]:
        raise ValueError(f"a run finishes as {' or '.join(STATUSES[1:])}, not {status!r}")
    con.execute("UPDATE runs SET status = ?, finished_at = current_timestamp, result = ? WHERE run_id = ?",
                [status, json.dumps(result), run_id])


def record_run(con, kind: str, config: dict, result: dict) -> int:
    """A run that is already done, in one row; returns its run_id."""
    return int(con.execute("INSERT INTO runs (kind, config, finished_at, status, result)"
                           " VALUES (?, ?, current_timestamp, 'done', ?) RETURNING run_id",
                           [kind, json.dumps(config), json.dumps(result)]).fetchone()[0])
