"""Benchmark: seconds per dashboard page, first load and after it (cached), with streamlit's AppTest.

    .venv/bin/python benchmarks/bench_pages.py [--scale demo|ferplus] [--store PATH] [--pages a,b]

demo: the demo study (84 sources, 840 stimuli, 42,000 votes), built with disfer.demo.build_demo;
goal: every page under 1 s after the first load. ferplus: the analysis benchmark's FERPlus-scale
study (35,887 sources x 10 versions, 3.6 million votes, 13 models, see bench_report.py); goal:
under 3 s a page after the first load. --store reuses (or keeps) a store at PATH.

The first load includes loading the study, the analyses (bootstrap CIs, Dawid-Skene) and imports;
"cached" is the median of three further runs of the page script, which is what a user waits for
when moving between pages or changing a widget after that.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAGES = ["overview", "stimuli", "robustness", "confusion", "agreement", "audit", "saliency"]


def build(path: Path, scale: str) -> None:
    from disfer.store import Store

    if scale == "demo":
        from disfer.demo import build_demo

        build_demo(Store(path), seed=0)
    else:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_report import build as build_ferplus

        build_ferplus(path, "ferplus")


def measure(path: Path, pages: list[str]) -> None:
    from streamlit.testing.v1 import AppTest

    os.environ["DISFER_DB"] = str(path)
    print(f"{'page':<12} {'first load':>11} {'cached':>8}")
    for page in pages:
        at = AppTest.from_file(str(ROOT / "app_pages" / f"{page}.py"), default_timeout=900)
        t = time.perf_counter()
        at.run()
        first = time.perf_counter() - t
        if at.exception:
            print(f"{page:<12} raised: {at.exception[0].value}")
            continue
        again = []
        for _ in range(3):
            t = time.perf_counter()
            at.run()
            again.append(time.perf_counter() - t)
        print(f"{page:<12} {first:>9.2f} s {statistics.median(again):>6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", choices=("demo", "ferplus"), default="demo")
    ap.add_argument("--store", help="reuse/keep the store at this path (built when absent)")
    ap.add_argument("--pages", default=",".join(PAGES))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.store) if args.store else Path(tmp) / f"{args.scale}.duckdb"
        print(f"store: {path}" if args.store else f"{args.scale} scale: {path}")
        if not path.exists():
            t = time.perf_counter()
            build(path, args.scale)
            print(f"  built the store in {time.perf_counter() - t:.1f} s (not part of the figures)")
        measure(path, args.pages.split(","))


if __name__ == "__main__":
    main()
