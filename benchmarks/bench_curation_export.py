"""Benchmark: curation writes, the ground-truth view, the review queue and every export format, on the
real FER-2013 test split (7,178 faces, ../shared/data/fer2013_test.csv).

    .venv/bin/python benchmarks/bench_curation_export.py [--decisions 500]

Prints seconds per step: decisions recorded one transaction each (as the page and the CLI do),
current_ground_truth and review_queue over that many events, and each export (sources only), with
the size of what it wrote. Goals: a decision well under 50 ms; the view and the queue under 1 s;
an export of the 7,178 faces under 10 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from disfer import curation, ledger  # noqa: E402
from disfer.curation.export import FORMATS, export_dataset  # noqa: E402
from disfer.data.ingest import ingest_fer2013  # noqa: E402
from disfer.emotions import EMOTIONS  # noqa: E402
from disfer.store import Store  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "fer2013_test.csv"


def timed(label: str, fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    print(f"{label:<44} {time.perf_counter() - start:8.3f} s")
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=500)
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} is absent (only on the project's machines)")
        return 0
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        n = timed("ingest fer2013_test.csv", ingest_fer2013, store, DATA)
        with store.read() as con:
            originals = dict(con.execute("SELECT source_id, original_label FROM sources").fetchall())
        ids = rng.choice(sorted(originals), size=args.decisions, replace=False)
        start = time.perf_counter()
        for i, sid in enumerate(ids):
            new = EMOTIONS[int(rng.integers(0, 7))]
            status = "confirmed" if new == originals[int(sid)] else "relabeled"
            ledger.record_decision(store, int(sid), [new], None, status, f"curator{i % 3}")
        per = (time.perf_counter() - start) / len(ids)
        print(f"{'record_decision (one transaction each)':<44} {per * 1000:8.1f} ms per decision")
        gt = timed(f"current_ground_truth ({len(ids)} events)", ledger.current_ground_truth, store)
        assert len(gt) == len(ids)
        timed(f"review_queue ({n:,} sources, no votes)", curation.review_queue, store)
        import sklearn.metrics  # noqa: F401 - a one-off import of seconds, not the agreement's cost

        timed("curator_agreement", curation.curator_agreement, store)
        for fmt in FORMATS:
            out = Path(tmp) / fmt
            manifest = timed(f"export {fmt} ({n:,} faces)", export_dataset, store, fmt, out)
            size = sum(f["bytes"] for f in manifest["files"].values())
            print(f"{'':<44} {len(manifest['files']):,} files, {size / 1e6:.1f} MB, "
                  f"{manifest['labels_changed']} labels changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
