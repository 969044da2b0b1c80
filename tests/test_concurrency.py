"""Nothing is lost under concurrency: threads of this process (browser sessions), a second process
writing in a loop and two `disfer curate set` commands record decisions on one store at the same
time, and every one of them lands."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from test_curation import add_sources

from disfer import ledger
from disfer.store import Store

THREADS, PER_THREAD, IN_PROCESS_2 = 3, 16, 20

# The second process: its own Store handle, which opens the file per write and closes it at once,
# so the two processes take turns on DuckDB's one-writer-process lock.
CHILD = textwrap.dedent("""
    import sys
    from disfer import ledger
    from disfer.store import Store
    store = Store(sys.argv[1], lock_timeout=120)
    print("ready", flush=True)
    for i in range(int(sys.argv[2])):
        ledger.record_decision(store, 1 + i % 4, ["surprise"], None, "relabeled", "cli", note=f"cli-{i}")
    print("done", flush=True)
""")


def test_threads_and_a_second_process_all_land(tmp_path):
    store = Store(tmp_path / "busy.duckdb", lock_timeout=120)
    add_sources(store, ["happiness", "anger", "sadness", "neutral"])
    counter_before = store.change_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(store.path), str(IN_PROCESS_2)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The console script is part of our install (make setup): missing, it must fail, not drop out.
    disfer = Path(sys.executable).with_name("disfer")
    assert disfer.exists(), f"{disfer} is missing: run make setup"
    cli_runs = [subprocess.Popen([str(disfer), "--db", str(store.path), "curate", "set", str(k), "--labels",
                                  "disgust", "--status", "relabeled", "--curator", "shell", "--note", f"shell-{k}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for k in (1, 2)]
    try:
        assert child.stdout.readline().strip() == "ready"
        errors: list[BaseException] = []

        def session(t: int) -> None:
            try:
                for i in range(PER_THREAD):
                    # Sessions write one decision per click. Another process gets the file only while
                    # no thread of this one holds a connection, so clicks come 0.1 s apart (people
                    # are slower still); back-to-back writes would make it wait, not lose anything.
                    ledger.record_decision(store, 1 + (t + i) % 4, ["fear"], None, "relabeled",
                                             f"web{t}", note=f"web{t}-{i}")
                    time.sleep(0.1)
            except BaseException as err:  # noqa: BLE001 - reported by the main thread
                errors.append(err)

        threads = [threading.Thread(target=session, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        out, err = child.communicate(timeout=180)
        cli_results = [(run.wait(timeout=180), run.stderr.read()) for run in cli_runs]
    finally:
        for proc in [child, *cli_runs]:
            if proc.poll() is None:
                proc.kill()
    assert not errors, errors
    assert child.returncode == 0, err
    assert all(code == 0 for code, _ in cli_results), cli_results
    log = ledger.event_log(store)
    expected = {f"web{t}-{i}" for t in range(THREADS) for i in range(PER_THREAD)} | \
               {f"cli-{i}" for i in range(IN_PROCESS_2)} | {f"shell-{k}" for k in (1, 2)}
    assert len(log) == THREADS * PER_THREAD + IN_PROCESS_2 + 2
    assert set(log["note"]) == expected
    assert log["event_id"].is_unique
    # Every write was its own committed transaction.
    assert store.change_counter() - counter_before == len(log)
    # The processes did take turns: the CLI's events are interleaved with the sessions'.
    cli_ids = log.loc[log["curator"] == "cli", "event_id"]
    web_ids = log.loc[log["curator"].str.startswith("web"), "event_id"]
    assert cli_ids.min() < web_ids.max() and web_ids.min() < cli_ids.max()
