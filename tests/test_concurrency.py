"""Nothing is lost under concurrency: threads of this process (browser sessions) and a second
process (the CLI) record decisions on one store at the same time, and every one of them lands."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

from test_curation import add_sources

from disfer import curation
from disfer.store import Store

THREADS, PER_THREAD, IN_PROCESS_2 = 6, 12, 30

# The second process: its own Store handle, which opens the file per write and closes it at once,
# so the two processes take turns on DuckDB's one-writer-process lock.
CHILD = textwrap.dedent("""
    import sys
    from disfer import curation
    from disfer.store import Store
    store = Store(sys.argv[1], lock_timeout=120)
    print("ready", flush=True)
    for i in range(int(sys.argv[2])):
        curation.record_decision(store, 1 + i % 4, ["surprise"], None, "relabeled", "cli", note=f"cli-{i}")
    print("done", flush=True)
""")


def test_threads_and_a_second_process_all_land(tmp_path):
    store = Store(tmp_path / "busy.duckdb", lock_timeout=120)
    add_sources(store, ["happiness", "anger", "sadness", "neutral"])
    counter_before = store.change_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(store.path), str(IN_PROCESS_2)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        errors: list[BaseException] = []

        def session(t: int) -> None:
            try:
                for i in range(PER_THREAD):
                    # Sessions write one decision per click; between clicks the file is free.
                    curation.record_decision(store, 1 + (t + i) % 4, ["fear"], None, "relabeled",
                                             f"web{t}", note=f"web{t}-{i}")
                    time.sleep(0.01)
            except BaseException as err:  # noqa: BLE001 - reported by the main thread
                errors.append(err)

        threads = [threading.Thread(target=session, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        out, err = child.communicate(timeout=180)
    finally:
        if child.poll() is None:
            child.kill()
    assert not errors, errors
    assert child.returncode == 0, err
    log = curation.event_log(store)
    expected = {f"web{t}-{i}" for t in range(THREADS) for i in range(PER_THREAD)} | \
               {f"cli-{i}" for i in range(IN_PROCESS_2)}
    assert len(log) == THREADS * PER_THREAD + IN_PROCESS_2
    assert set(log["note"]) == expected
    assert log["event_id"].is_unique
    # Every write was its own committed transaction.
    assert store.change_counter() - counter_before == len(log)
    # The processes did take turns: the CLI's events are interleaved with the sessions'.
    cli_ids = log.loc[log["curator"] == "cli", "event_id"]
    web_ids = log.loc[log["curator"] != "cli", "event_id"]
    assert cli_ids.min() < web_ids.max() and web_ids.min() < cli_ids.max()
