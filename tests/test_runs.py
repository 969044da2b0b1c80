"""The runs table's one writer: start, finish and record a run inside the caller's transaction."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from disfer.runs import INTERRUPTED, finish_run, read_runs, record_run, start_run, this_process


def _run(store, run_id):
    with store.read() as con:
        kind, config, status, result, started, finished = con.execute(
            "SELECT kind, config, status, result, started_at, finished_at FROM runs WHERE run_id = ?",
            [run_id]).fetchone()
    return kind, json.loads(config), status, result and json.loads(result), started, finished


def test_a_started_run_is_running_until_finished(store):
    with store.write() as con:
        run_id = start_run(con, "finetune", {"epochs": 2})
    kind, config, status, result, _, finished = _run(store, run_id)
    assert (kind, config, status, result, finished) == (
        "finetune", {"epochs": 2, "process": this_process()}, "running", None, None)
    with store.write() as con:
        finish_run(con, run_id, "failed", {"error": "boom"})
    _, _, status, result, started, finished = _run(store, run_id)
    assert status == "failed" and result == {"error": "boom"} and finished >= started


def test_a_recorded_run_is_done_at_once_and_ids_grow(store):
    with store.write() as con:
        first = record_run(con, "build", {"seed": 0}, {"stimuli": 840})
        second = record_run(con, "predict", {"model_id": "m"}, {"n": 3})
    assert second > first
    assert _run(store, first)[:4] == ("build", {"seed": 0}, "done", {"stimuli": 840})


def test_a_run_lands_with_its_transaction_or_not_at_all(store):
    with pytest.raises(RuntimeError), store.write() as con:
        record_run(con, "build", {}, {})
        raise RuntimeError("the build failed after recording")
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


@pytest.mark.parametrize("status", ["running", "ok", "DONE"])
def test_a_run_finishes_only_as_done_or_failed(store, status):
    with store.write() as con:
        run_id = start_run(con, "finetune", {})
        with pytest.raises(ValueError, match="done or failed"):
            finish_run(con, run_id, status, {})


def _running_row(store, process) -> int:
    """A 'running' row as a process described by `process` would have left it."""
    config = {"epochs": 1} if process is None else {"epochs": 1, "process": process}
    with store.write() as con:
        return int(con.execute("INSERT INTO runs (kind, config) VALUES ('finetune', ?) RETURNING run_id",
                               [json.dumps(config)]).fetchone()[0])


def _shown(store, run_id) -> str:
    with store.read() as con:
        return next(r.status for r in read_runs(con) if r.run_id == run_id)


def test_a_run_of_this_live_process_is_shown_running(store):
    with store.write() as con:
        run_id = start_run(con, "finetune", {})
    with store.read() as con:
        (run,) = read_runs(con, "finetune")
    assert (run.run_id, run.status, run.stored_status, run.finished_at) == (run_id, "running", "running", None)
    assert run.config["process"]["pid"] == os.getpid()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("process", [
    pytest.param(lambda: {**this_process(), "pid": _dead_pid()}, id="process gone"),
    pytest.param(lambda: {**this_process(), "started": "0"}, id="pid reused by a later process"),
    pytest.param(lambda: {**this_process(), "host": socket.gethostname() + "-elsewhere"}, id="other host"),
    pytest.param(lambda: None, id="no process recorded"),
    pytest.param(lambda: {"pid": "1; rm", "host": socket.gethostname()}, id="malformed"),
])
def test_a_running_row_whose_process_is_gone_is_shown_interrupted(store, process):
    run_id = _running_row(store, process())
    assert _shown(store, run_id) == INTERRUPTED
    with store.read() as con:   # shown, not stored: the row itself is left as it is
        assert con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchone()[0] == "running"


def test_a_killed_process_not_yet_reaped_is_gone(store):
    code = "import os, sys, time; from disfer.runs import this_process; " \
           "print(__import__('json').dumps(this_process()), flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        run_id = _running_row(store, json.loads(proc.stdout.readline()))
        assert _shown(store, run_id) == "running"
        proc.send_signal(signal.SIGKILL)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)   # dead, still a zombie
        assert _shown(store, run_id) == INTERRUPTED
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_finished_runs_keep_their_status_and_read_runs_filters_by_kind(store):
    with store.write() as con:
        done = record_run(con, "build", {}, {"stimuli": 1})
        failed = start_run(con, "finetune", {})
        finish_run(con, failed, "failed", {"error": "boom"})
    with store.read() as con:
        assert [(r.run_id, r.status) for r in read_runs(con)] == [(failed, "failed"), (done, "done")]
        assert [r.run_id for r in read_runs(con, "build")] == [done]
        assert read_runs(con, "build")[0].result == {"stimuli": 1}


def test_runs_are_signed_by_who_started_them(store):
    from disfer.access import Actor
    from disfer.runs import record_run, start_run

    with store.write() as con:
        record_run(con, "export", {}, {}, Actor("adm@lab.org", "sub-adm", "admin"))
        start_run(con, "finetune", {}, "kim")
        record_run(con, "build", {}, {})
        rows = con.execute("SELECT kind, actor, subject FROM runs ORDER BY run_id").fetchall()
    assert rows == [("export", "adm@lab.org", "sub-adm"), ("finetune", "kim", "local"), ("build", "local", "local")]
