"""Benchmark: `study_report` and `disfer report --json` at the paper's scale and at FERPlus scale.

    .venv/bin/python benchmarks/bench_report.py [--scale paper|ferplus|both] [--store PATH]
                                                [--against GIT_REF] [--repeat 3]

paper: 84 sources x 10 versions, 50 votes each (42,000 votes), 13 models; goal well under 1 s.
ferplus: 35,887 sources x 10 versions x 10 votes (3.6 million votes), 13 models; goal < 10 s and
< 2 GB in process, and (issue 19) < 8 s and < 1.5 GB for the cold `disfer report --json`,
Dawid-Skene included. Votes are drawn from the real FERPlus vote distribution of each image where
../shared/data/ferplus_fer2013new.csv is present (blended towards uniform as the distortion
grows), else from a simple noisy-label model. FER-2013's own labels cannot be joined to FERPlus
rows here (see shared/data/README), so each source's label is its FERPlus plurality emotion,
replaced by a random emotion for 25% of the sources (label noise of the order FERPlus found).

The store is built first (not timed); the report then runs in a fresh process, which prints its
seconds and its peak resident memory (ru_maxrss, the whole process: Python, DuckDB, numpy).
Then `disfer --db STORE report --json` (with and without Dawid-Skene) runs `--repeat` times as a
cold process, imports included, as a user runs it: median wall and CPU seconds, peak RSS.

`--against REF` also runs both with the package as it was at git REF (extracted with `git archive`,
see bench_cli.py), turn about with the current one so that a busy machine slows both alike, prints
the figures side by side, and compares the two JSON reports number by number (the largest
relative difference, and every value that differs by more than 1e-9).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
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


def package_env(root: Path) -> dict:
    """The environment that makes a child process import the `disfer` package under `root`."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}


def cli_report(root: Path, store: Path, options: list[str], out: Path) -> tuple[float, float, float]:
    """Run `disfer --db STORE --quiet report --json OPTIONS` with the package under `root` in a
    fresh process, its JSON into `out`; returns (wall s, CPU s: user + system, all threads, peak RSS
    MiB). os.wait4 gives this one child's resource use (getrusage(RUSAGE_CHILDREN) would mix them)."""
    argv = [sys.executable, "-m", "disfer.cli", "--db", str(store), "--quiet", "report", "--json", *options]
    with open(out, "wb") as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(argv, env=package_env(root), cwd=root, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"disfer report failed ({root}):\n{stderr.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def cli_figures(store: Path, roots: dict[str, Path], bootstrap: int, repeat: int, work: Path) -> None:
    """Time the cold `disfer report --json`, with and without Dawid-Skene, for each package version
    (taking turns), print the medians side by side and compare the versions' reports."""
    print(f"  disfer report --json, cold process (imports included), median of {repeat}: "
          "wall s / CPU s / peak RSS MiB")
    print(f"    {'':18}" + "".join(f"{v[:24]:>26}" for v in roots))
    for label, extra in (("Dawid-Skene", []), ("--no-consensus", ["--no-consensus"])):
        options = ["--bootstrap", str(bootstrap), *extra]
        runs: dict[str, list[tuple[float, float, float]]] = {v: [] for v in roots}
        for _ in range(repeat):
            for n, (version, root) in enumerate(roots.items()):
                runs[version].append(cli_report(root, store, options, work / f"report_{n}.json"))
        cells = ""
        for version in roots:
            wall, cpu, peak = (statistics.median(r[i] for r in runs[version]) for i in range(3))
            cells += f"{wall:>10.2f} /{cpu:>6.2f} /{peak:>6.0f}"
        print(f"    {label:18}{cells}  (load average {os.getloadavg()[0]:.1f})", flush=True)
        if len(roots) > 1:
            compare_reports(*(json.loads((work / f"report_{n}.json").read_text()) for n in range(2)))


def _numbers(value, path: str = ""):
    """(path, number or other leaf) of every leaf of a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{path}[{i}]")
    else:
        yield path, value


def compare_reports(old: dict, new: dict, tolerance: float = 1e-9) -> None:
    """Print the largest relative difference between two reports' numbers, and every leaf that
    differs by more (a number) or at all (anything else, a missing key included)."""
    a, b = dict(_numbers(old)), dict(_numbers(new))
    worst, differ = 0.0, []
    for key in sorted(a.keys() | b.keys()):
        x, y = a.get(key, "<absent>"), b.get(key, "<absent>")
        if isinstance(x, int | float) and isinstance(y, int | float) and not isinstance(x, bool):
            rel = abs(x - y) / max(abs(x), abs(y), 1e-300) if x != y else 0.0
            worst = max(worst, rel) if math.isfinite(rel) else worst
            if rel > tolerance:
                differ.append(f"{key}: {x} -> {y}")
        elif x != y:
            differ.append(f"{key}: {x!r} -> {y!r}")
    print(f"      reports: {len(a)} values, largest relative difference {worst:.1e}; "
          f"{len(differ)} differ by more than {tolerance:g}" + "".join(f"\n        {d}" for d in differ[:20]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", choices=("paper", "ferplus", "both"), default="both")
    ap.add_argument("--store", help="reuse/keep the store at this path (built when absent)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--against", metavar="GIT_REF", help="also run the package as it was at this git ref")
    ap.add_argument("--repeat", type=int, default=3, help="cold `disfer report --json` runs per figure")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--consensus", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--build", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(Path(args.measure), args.bootstrap, args.consensus)
        return
    if args.build:
        build(Path(args.build), args.scale)
        return
    scales = ("paper", "ferplus") if args.scale == "both" else (args.scale,)
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"now": ROOT}
        if args.against:
            from bench_cli import package_at

            roots = {args.against: package_at(args.against, Path(tmp) / "against"), "now": ROOT}
        for scale in scales:
            path = Path(args.store) if args.store else Path(tmp) / f"{scale}.duckdb"
            print(f"{scale} scale: {path}")
            if not path.exists():
                t = time.perf_counter()
                # In a child process: Linux carries a parent's peak RSS into every child it forks
                # later (ru_maxrss survives fork and exec), so a build in this process (3.5 GB at
                # FERPlus scale) would become every measured report's "peak".
                subprocess.run([sys.executable, __file__, "--build", str(path), "--scale", scale], check=True)
                print(f"  built the store in {time.perf_counter() - t:.1f} s (not part of the figure)")
            for version, root in roots.items():
                for consensus in (False, True):
                    print(f"  [{version}]", end="", flush=True)
                    subprocess.run([sys.executable, __file__, "--measure", str(path), "--bootstrap",
                                    str(args.bootstrap), *(["--consensus"] if consensus else [])],
                                   check=True, env=package_env(root))
            cli_figures(path, roots, args.bootstrap, args.repeat, Path(tmp))


if __name__ == "__main__":
    main()
