"""The runs table's one writer: start, finish and record a run inside the caller's transaction."""

from __future__ import annotations

import json

import pytest

from disfer.runs import finish_run, record_run, start_run


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
    assert (kind, config, status, result, finished) == ("finetune", {"epochs": 2}, "running", None, None)
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
