"""Benchmark: peak memory of `votes import` and `predictions import` as the file grows.

    .venv/bin/python benchmarks/bench_ingest.py [--sizes 10,40] [--before OLD_CHECKOUT]

Builds a store of 400,000 stimuli (ids only: the importers never read pixels), writes a valid
votes file (with an attribute column) and a valid predictions file of each size in MB into a
temporary folder, and imports each in a fresh process, so that process's peak RSS (ru_maxrss) is
the import's own. `--before` runs the same imports with another checkout's code (e.g. an older
commit unpacked by `git archive`), printed side by side. Memory that does not grow with the
file's size shows as equal figures across sizes; "+import" is the peak above what the process held
just before the import (Python, DuckDB, pyarrow and the open store), and "heap" the peak of
Python's own allocations during the import (tracemalloc, in a second run: it counts the importer's
objects and numpy arrays, not DuckDB's or Arrow's buffers, so "+import" minus "heap" is about what
the store's insert takes).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES, LEVELS = 40_000, 10  # 400,000 stimuli, about a full FER-2013 study
PROBS = "0.142857142857,0.142857142857,0.142857142857,0.142857142857,0.142857142857,0.142857142857,0.142857142858"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_store(path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from disfer.store import Store

    store = Store(path)
    store.schema_version()
    with store.write() as con:
        con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label, split)"
                    " SELECT i, 'bench', i, 'anger', 'Training' FROM range(1, ? + 1) t(i)", [SOURCES])
        con.execute("INSERT INTO stimuli (stimulus_id, source_id, distortion, level, seed, pixels)"
                    " SELECT s || '-gaussian_blur-' || l, s, 'gaussian_blur', l, 0, ''::BLOB"
                    " FROM range(1, ? + 1) a(s), range(1, ? + 1) b(l)", [SOURCES, LEVELS])


def _stimulus_ids():
    while True:
        for s in range(1, SOURCES + 1):
            for level in range(1, LEVELS + 1):
                yield f"{s}-gaussian_blur-{level}"


def write_votes(path: Path, megabytes: float) -> int:
    """Votes of as many participants as it takes (each votes on every stimulus at most once)."""
    limit, rows = megabytes * 2**20, 0
    with open(path, "w") as fh:
        fh.write("participant_id,stimulus_id,emotion,rt_ms,answered_at,age\n")
        for i, sid in enumerate(_stimulus_ids()):
            if fh.tell() >= limit:
                break
            p = i // (SOURCES * LEVELS)
            fh.write(f"participant{p:05d},{sid},happiness,{800 + i % 977}.5,2024-03-01T10:{i % 60:02d}:00Z,"
                     f"{20 + p % 50}\n")
            rows += 1
    return rows


def write_predictions(path: Path, megabytes: float) -> int:
    limit, rows = megabytes * 2**20, 0
    with open(path, "w") as fh:
        fh.write("stimulus_id,anger,disgust,fear,happiness,neutral,sadness,surprise\n")
        for sid in _stimulus_ids():
            if fh.tell() >= limit or rows >= SOURCES * LEVELS:
                break
            fh.write(f"{sid},{PROBS}\n")
            rows += 1
    return rows


def run_one(code_root: Path, kind: str, csv_path: Path, db: Path, trace: bool = False) -> dict:
    """One import in this (fresh) process, with `code_root`'s disfer."""
    sys.path.insert(0, str(code_root))
    import disfer
    from disfer.data.votes import import_votes
    from disfer.models.predictions_import import import_predictions
    from disfer.progress import set_quiet
    from disfer.store import Store

    assert Path(disfer.__file__).resolve().is_relative_to(code_root.resolve()), disfer.__file__
    set_quiet(True)
    store = Store(db)
    with store.read() as con:
        con.execute("SELECT count(*) FROM stimuli").fetchall()
    base = _rss_mib()
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    n = import_votes(store, csv_path) if kind == "votes" else import_predictions(store, csv_path, "bench")
    seconds = time.perf_counter() - t0
    heap = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    return {"rows": n, "seconds": seconds, "base_mib": base, "peak_mib": _rss_mib(), "heap_mib": heap}


def _child(code_root: Path, kind: str, csv_path: Path, db: Path, trace: bool = False) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(code_root), str(csv_path), str(db),
                          "trace" if trace else "-"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,40", help="file sizes in MB")
    ap.add_argument("--before", type=Path, help="another checkout to compare with (its disfer/ is imported)")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:  # one measurement in a fresh process
        kind, code_root, csv_path, db, trace = args.child
        print(json.dumps(run_one(Path(code_root), kind, Path(csv_path), Path(db), trace == "trace")))
        return
    roots = {"after": ROOT} if args.before is None else {"before": args.before, "after": ROOT}
    with tempfile.TemporaryDirectory(prefix="disfer-bench-") as tmp:
        tmp = Path(tmp)
        template = tmp / "template.duckdb"
        make_store(template)
        print(f"store of {SOURCES * LEVELS:,} stimuli; peak RSS of the import process in MiB "
              f"(+import: above its RSS just before the import)", flush=True)
        for kind, write in (("votes", write_votes), ("predictions", write_predictions)):
            for size in (float(s) for s in args.sizes.split(",")):
                csv_path = tmp / f"{kind}-{size:g}mb.csv"
                rows = write(csv_path, size)
                cells = []
                for label, code_root in roots.items():
                    db = tmp / f"{label}.duckdb"
                    db.write_bytes(template.read_bytes())
                    r = _child(code_root, kind, csv_path, db)
                    db.write_bytes(template.read_bytes())
                    heap = _child(code_root, kind, csv_path, db, trace=True)["heap_mib"]
                    assert r["rows"] == rows, (r, rows)
                    cells.append(f"{label}: peak {r['peak_mib']:4,.0f} (+import {r['peak_mib'] - r['base_mib']:4,.0f},"
                                 f" heap {heap:4,.0f}) in {r['seconds']:4.1f} s")
                    db.unlink()
                print(f"{kind:>11} {size:4g} MB ({rows:>7,} rows) | " + " | ".join(cells), flush=True)
                csv_path.unlink()


if __name__ == "__main__":
    main()
