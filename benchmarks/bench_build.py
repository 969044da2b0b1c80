"""Benchmark: ingest a full-size fer2013.csv (35,887 rows) and build all 358,870 stimuli.

    .venv/bin/python benchmarks/bench_build.py [--rows 35887] [--csv FULL_fer2013.csv]

Without --csv, a file of --rows rows is synthesised by repeating the real test split
(../shared/data/fer2013_test.csv). Each scale runs in its own process, so its peak memory
(ru_maxrss) is its own: memory that does not grow with the file's size shows as equal peaks.
Goal: at least 5,000 stimuli per second on a 2-core machine.
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
REAL_TEST = ROOT.parent / "shared" / "data" / "fer2013_test.csv"


def synthesise(rows: int, out: Path) -> Path:
    lines = REAL_TEST.read_text().splitlines()
    header, body = lines[0], lines[1:]
    with open(out, "w") as fh:
        fh.write(header + "\n")
        for i in range(rows):
            fh.write(body[i % len(body)] + "\n")
    return out


def _cpu() -> float:
    """CPU seconds of this process: on a shared machine the fair measure beside wall time."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_one(csv_path: Path, workdir: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from disfer.data.build import build_study
    from disfer.data.ingest import ingest_fer2013
    from disfer.progress import set_quiet
    from disfer.store import Store

    set_quiet(True)
    store = Store(workdir / "bench.duckdb")
    store.schema_version()
    t0, c0 = time.perf_counter(), _cpu()
    faces = ingest_fer2013(store, csv_path)
    t1, c1 = time.perf_counter(), _cpu()
    stimuli = build_study(store, per_class=None, seed=0)
    t2, c2 = time.perf_counter(), _cpu()
    return {"faces": faces, "ingest_s": t1 - t0, "faces_per_s": faces / (t1 - t0),
            "stimuli": stimuli, "build_s": t2 - t1, "stimuli_per_s": stimuli / (t2 - t1),
            "ingest_cpu_s": c1 - c0, "build_cpu_s": c2 - c1,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "store_mib": (workdir / "bench.duckdb").stat().st_size / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=35887)
    ap.add_argument("--csv", type=Path, help="a real full fer2013.csv instead of a synthesised one")
    ap.add_argument("--scales", default="0.25,1", help="fractions of --rows to run (memory check)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:  # one measurement in a fresh process
        print(json.dumps(run_one(args.child, args.child.parent)))
        return
    if args.csv is None and not REAL_TEST.exists():
        sys.exit(f"no --csv given and {REAL_TEST} is absent: nothing to benchmark")
    for scale in (float(s) for s in args.scales.split(",")):
        rows = int(round(args.rows * scale))
        with tempfile.TemporaryDirectory(prefix="disfer-bench-") as tmp:
            tmp = Path(tmp)
            if args.csv is not None and scale == 1:
                csv_path = tmp / "fer2013.csv"
                csv_path.symlink_to(args.csv.resolve())
            else:
                csv_path = synthesise(rows, tmp / "fer2013.csv")
            out = subprocess.run([sys.executable, __file__, "--child", str(csv_path)],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
        print(f"{r['faces']:>6,} faces: ingest {r['ingest_s']:.1f} s ({r['faces_per_s']:,.0f} faces/s, "
              f"{r['ingest_cpu_s']:.1f} CPU s); build {r['stimuli']:,} stimuli in {r['build_s']:.1f} s = "
              f"{r['stimuli_per_s']:,.0f} stimuli/s ({r['stimuli'] / r['build_cpu_s']:,.0f} per CPU s); "
              f"peak RSS {r['peak_rss_mib']:,.0f} MiB; store {r['store_mib']:,.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
