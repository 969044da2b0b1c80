"""Benchmark: build the whole demo study (`disfer demo`) and print its time, memory and figures.

    .venv/bin/python benchmarks/bench_demo.py [--seed 0] [--seeds 0,1,2]

Goal: the whole demo in under 2 minutes on a 2-core machine (aim: under 40 s, as the dashboard's
tests build it once per session). Also prints the crowd's aggregate figures (the paper's ranges:
majority-vote accuracy around 0.6, Fleiss' kappa 0.5 to 0.6), how many deliberately wrong labels
the label audit finds, and the accuracy of the pre-trained mini-Xception on the synthetic faces.
--seeds builds one demo per seed (each in its own process) to show the figures' spread.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_one(seed: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from disfer.analysis import fleiss_kappa, label_audit, majority_vote
    from disfer.demo import build_demo
    from disfer.demo.faces import generate_faces
    from disfer.progress import set_quiet
    from disfer.store import Store

    set_quiet(True)
    steps: list[tuple[float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "demo.duckdb")
        started = time.perf_counter()
        result = build_demo(store, seed=seed, log=lambda line: steps.append((time.perf_counter(), line)))
        seconds = time.perf_counter() - started
        majority = majority_vote(store)
        audit = set(label_audit(store).source_ids)
        with store.read() as con:
            model = con.execute(
                "SELECT s.original_index, s.original_label, p.predicted FROM predictions p"
                " JOIN stimuli t USING (stimulus_id) JOIN sources s USING (source_id)"
                " WHERE p.model_id = 'minixception' AND t.distortion = 'original'").df()
        shown = generate_faces(12, seed).emotion      # the emotion each face was drawn to show
        figures = {
            "seed": seed, "seconds": round(seconds, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "step_started_at_s": {line.split(" (")[0][:40]: round(t - started, 1) for t, line in steps},
            "votes": result.votes,
            "majority_accuracy": round(float(majority["correct"].astype(float).mean()), 3),
            "fleiss_kappa": round(fleiss_kappa(store), 3),
            "audit_flagged_sources": len(audit),
            "audit_true_finds": f"{len(audit & set(result.wrong_label_sources))} of "
                                f"{len(result.wrong_label_sources)} wrong labels",
        }
        if len(model):
            figures["minixception_acc_vs_labels"] = round(float((model.predicted == model.original_label).mean()), 3)
            figures["minixception_acc_vs_shown"] = round(float(
                (model.predicted == [shown[i] for i in model.original_index]).mean()), 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", help="comma-separated seeds, one process each")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one or not args.seeds:
        print(json.dumps(run_one(args.seed), indent=None if args.one else 2))
        return
    for seed in (int(s) for s in args.seeds.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", "--seed", str(seed)],
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
