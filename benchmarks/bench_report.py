"""Benchmark: `study_report` at the paper's scale and at FERPlus scale.

    .venv/bin/python benchmarks/bench_report.py [--scale paper|ferplus|both] [--store PATH]

paper: 84 sources x 10 versions, 50 votes each (42,000 votes), 13 models; goal well under 1 s.
ferplus: 35,887 sources x 10 versions x 10 votes (3.6 million votes), 13 models; goal < 10 s and
< 2 GB. Votes are drawn from the real FERPlus vote distribution of each image where
../shared/data/ferplus_fer2013new.csv is present (blended towards uniform as the distortion
grows), else from a simple noisy-label model. FER-2013's own labels cannot be joined to FERPlus
rows here (see shared/data/README), so each source's label is its FERPlus plurality emotion,
replaced by a random emotion for 25% of the sources (label noise of the order FERPlus found).

The store is built first (not timed); the report then runs in a fresh process, which prints its
seconds and its peak resident memory (ru_maxrss, the whole process: Python, DuckDB, numpy).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
FERPLUS = ROOT.parent / "shared" / "data" / "ferplus_fer2013new.csv"
FERPLUS_ORDER = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]
MODELS = {f"net{i:02d}": 0.45 + 0.03 * i for i in range(13)}


def ferplus_distributions(n: int, rng) -> np.ndarray | None:
    if not FERPLUS.exists():
        return None
    raw = pd.read_csv(FERPLUS)[FERPLUS_ORDER].to_numpy(np.float64)[:n]
    total = raw.sum(axis=1, keepdims=True)
    # Images without any emotion vote (all 'unknown' / not a face) get a uniform distribution.
    return np.where(total > 0, raw / np.maximum(total, 1), 1 / 7)


def build(path: Path, scale: str) -> None:
    from analysis_fixtures import random_study

    from disfer.store import Store

    rng = np.random.default_rng(0)
    if scale == "paper":
        random_study(Store(path), n_sources=84, raters_per_playlist=50, models=MODELS, seed=0)
        return
    n = 35_887
    probs = ferplus_distributions(n, rng)
    if probs is None:
        print("  (ferplus_fer2013new.csv absent: votes from the noisy-label model)")
        labels = rng.integers(0, 7, n)
    else:
        labels = probs.argmax(axis=1)
        noisy = rng.random(n) < 0.25
        labels[noisy] = rng.integers(0, 7, noisy.sum())
    random_study(Store(path), n_sources=n, raters_per_playlist=10, models=MODELS, seed=0,
                 vote_probs=probs, labels=labels)


def measure(path: Path, bootstrap: int, consensus: bool) -> None:
    import statsmodels.stats.contingency_tables  # noqa: F401  (imports are not the report's cost)

    from disfer.analysis import study_report
    from disfer.store import Store

    t, cpu = time.perf_counter(), time.process_time()
    report = study_report(Store(path), bootstrap=bootstrap, seed=0, consensus=consensus)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    c, h = report["counts"], report["humans"]
    load = os.getloadavg()[0]
    print(f"  study_report (bootstrap={bootstrap}, consensus={consensus}): {seconds:.2f} s wall, "
          f"{cpu:.2f} s CPU (all threads), peak RSS {peak:.0f} MiB; machine load average {load:.1f}")
    print(f"    {c['stimuli']} stimuli, {c['votes']} votes, {c['participants']} participants, "
          f"{c['models']} models; human accuracy {h['accuracy']:.3f}, Fleiss' kappa {h['fleiss_kappa']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", choices=("paper", "ferplus", "both"), default="both")
    ap.add_argument("--store", help="reuse/keep the store at this path (built when absent)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--consensus", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(Path(args.measure), args.bootstrap, args.consensus)
        return
    scales = ("paper", "ferplus") if args.scale == "both" else (args.scale,)
    with tempfile.TemporaryDirectory() as tmp:
        for scale in scales:
            path = Path(args.store) if args.store else Path(tmp) / f"{scale}.duckdb"
            print(f"{scale} scale: {path}")
            if not path.exists():
                t = time.perf_counter()
                build(path, scale)
                print(f"  built the store in {time.perf_counter() - t:.1f} s (not part of the figure)")
            for consensus in (False, True):
                subprocess.run([sys.executable, __file__, "--measure", str(path), "--bootstrap",
                                str(args.bootstrap), *(["--consensus"] if consensus else [])], check=True)


if __name__ == "__main__":
    main()
