"""The `runs` table: one row per pipeline run (build, predict, finetune, demo), written only here.

Each function works inside the caller's transaction (`with store.write() as con:`), so a run's row
lands together with what the run wrote, or not at all. A long run that may fail halfway (a
fine-tune) starts its row first in its own transaction, so a crash leaves a 'running' or
'failed' row behind; a short one records itself once done.

A process killed outright (`kill -9`, a power cut) cannot close its row, which then says
'running' for ever. So a started run records the process that runs it (pid, host and the
process's start time, in its config under "process"), and `read_runs` shows a 'running' row as
'interrupted' once that process is gone: only a live process on this host, the very one that
started the run (not a later process given the same pid), keeps a run 'running'.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime

from disfer.access import Actor, signature

STATUSES: tuple[str, ...] = ("running", "done", "failed")
# What `read_runs` shows: the stored statuses, and 'running' rows whose process is gone.
INTERRUPTED = "interrupted"
SHOWN_STATUSES: tuple[str, ...] = (*STATUSES, INTERRUPTED)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None where absent."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
    return text[text.rfind(")") + 2:].split()


def _start_ticks(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot, Linux), which a reused pid does not share."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def this_process() -> dict:
    """What identifies the current process to `read_runs` later: pid, host, start time."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": _start_ticks(pid)}


def process_alive(process: dict | None) -> bool:
    """Whether the process a run recorded is still running, here, as the same process."""
    if not isinstance(process, dict) or process.get("host") != socket.gethostname():
        return False   # another host's (or an older run's) process cannot be checked: not running here
    pid = process.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass   # alive, but another user's
    fields = _proc_stat(pid)
    if fields is None:
        return True   # no /proc (not Linux): the signal check is all there is
    if fields[0] in ("Z", "X"):
        return False   # killed, not yet reaped by its parent
    started = process.get("started")
    return started is None or fields[19] == started


def start_run(con, kind: str, config: dict, actor: Actor | str | None = None) -> int:
    """A new 'running' row of `kind` with its configuration (and this process), signed by `actor`
    (disfer.access.signature); returns its run_id."""
    who, subject = signature(actor)
    return int(con.execute("INSERT INTO runs (kind, config, actor, subject) VALUES (?, ?, ?, ?) RETURNING run_id",
                           [kind, json.dumps({**config, "process": this_process()}), who, subject]).fetchone()[0])


def finish_run(con, run_id: int, status: str, result: dict) -> None:
    """Close a started run as 'done' or 'failed', with its result (figures, or the error)."""
    if status not in STATUSES[1:]:
        raise ValueError(f"a run finishes as {' or '.join(STATUSES[1:])}, not {status!r}")
    con.execute("UPDATE runs SET status = ?, finished_at = current_timestamp, result = ? WHERE run_id = ?",
                [status, json.dumps(result), run_id])


def record_run(con, kind: str, config: dict, result: dict, actor: Actor | str | None = None) -> int:
    """A run that is already done, in one row, signed by `actor`; returns its run_id."""
    who, subject = signature(actor)
    return int(con.execute("INSERT INTO runs (kind, config, finished_at, status, result, actor, subject)"
                           " VALUES (?, ?, current_timestamp, 'done', ?, ?, ?) RETURNING run_id",
                           [kind, json.dumps(config), json.dumps(result), who, subject]).fetchone()[0])


@dataclass(frozen=True)
class Run:
    """One row of `runs` as a user should see it."""

    run_id: int
    kind: str
    status: str                  # effective: 'interrupted' for a 'running' row whose process is gone
    stored_status: str           # as the table holds it
    config: dict
    result: dict | None
    started_at: datetime
    finished_at: datetime | None


def effective_status(stored_status: str, config: dict | None) -> str:
    """`stored_status`, except 'interrupted' for a 'running' run whose process is gone."""
    if stored_status != "running":
        return stored_status
    return "running" if process_alive((config or {}).get("process")) else INTERRUPTED


def read_runs(con, kind: str | None = None) -> list[Run]:
    """Every run (of `kind`), newest first, each with its effective status."""
    sql = "SELECT run_id, kind, status, config, result, started_at, finished_at FROM runs"
    params: list = []
    if kind is not None:
        sql += " WHERE kind = ?"
        params.append(kind)
    runs = []
    for run_id, kind_, status, config, result, started, finished in con.execute(
            sql + " ORDER BY run_id DESC", params).fetchall():
        config = json.loads(config) if config else {}
        runs.append(Run(run_id=int(run_id), kind=kind_, status=effective_status(status, config),
                        stored_status=status, config=config,
                        result=json.loads(result) if result else None,
                        started_at=started, finished_at=finished))
    return runs
