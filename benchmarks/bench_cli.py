"""Benchmark: how fast the everyday commands answer in a cold process, and what they import.

    .venv/bin/python benchmarks/bench_cli.py [--repeat 5] [--against GIT_REF]

Builds the demo study (`disfer demo --no-finetune`) in a temporary folder (not timed; each version
builds its own), then runs
each command below as a fresh `python -m disfer.cli` process `--repeat` times and prints the
median and fastest wall time. `python -c "import torch"` and an empty interpreter are timed too,
for comparison. Each command then runs once more under `-X importtime`, which lists every module
it imported; the last column names the heavy libraries among them (torch above all: commands
that run no model should never pay for it).

`--against REF` also runs every command with the package as it was at git REF (extracted with
`git archive`, on a demo store it builds itself), and prints the two timings side by side.
Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "captum", "cv2", "sklearn", "scipy", "statsmodels", "pandas", "pyarrow",
         "deepface", "tensorflow", "keras", "onnx", "h5py", "safetensors")


def commands(work: Path, n: int, i: int) -> dict[str, list[str]]:
    """Command name -> argv after `disfer --db STORE` for version `n`, round `i` (fresh inputs)."""
    votes = work / f"votes_{n}_{i}.csv"
    export = work / f"export_{n}_{i}"
    shutil.rmtree(export, ignore_errors=True)
    return {
        "info": ["info"],
        "curate set": ["curate", "set", str(1 + i % 80), "--status", "excluded",
                       "--curator", "bench"],
        "curate log": ["curate", "log"],
        "curate show": ["curate", "show", "1"],
        "curate undo": ["curate", "undo", "--curator", "bench"],
        "curate queue": ["curate", "queue", "--limit", "5"],
        "votes import": ["votes", "import", str(votes)],
        "report --json": ["report", "--json"],
        "export": ["export", "--format", "fer2013-csv", str(export)],
    }


def write_votes(path: Path, stimuli: list[str], tag: str) -> Path:
    lines = ["participant_id,stimulus_id,emotion"]
    lines += [f"bench-{tag}-{p},{s},happiness" for p in range(3) for s in stimuli]
    path.write_text("\n".join(lines) + "\n")
    return path


def package_at(ref: str, into: Path) -> Path:
    """The `disfer` package as it was at git `ref`, extracted under `into`; returns its root."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "disfer"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run(argv: list[str], root: Path) -> tuple[float, subprocess.CompletedProcess]:
    """Run `argv` with the package at `root` (also the working directory: `python -m` looks there
    first); returns its wall time and result."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "DISFER_COMPILE": "0"}
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=root, capture_output=True, text=True)
    return time.perf_counter() - started, done


def heavy_imports(argv: list[str], root: Path) -> list[str]:
    """Top-level packages from HEAVY that `argv` imports (from its `-X importtime` report)."""
    _, done = run([argv[0], "-X", "importtime", *argv[1:]], root)
    found = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            found.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return [name for name in HEAVY if name in found]


def time_versions(stores: dict[str, Path], work: Path, roots: dict[str, Path], repeat: int) -> dict:
    """{command: {version: (median, fastest, heavy)}}; every version works on its own demo store
    (built by that version: an older one cannot open a store of a newer schema).

    The versions take turns command by command, so a busy machine slows them alike.
    """
    from disfer.store import Store

    with Store(stores["now"], read_only=True).read() as con:
        stimuli = [r[0] for r in con.execute(
            "SELECT stimulus_id FROM stimuli ORDER BY stimulus_id LIMIT 20").fetchall()]
    copies = stores
    times: dict[tuple[str, str], list[float]] = {}
    results: dict[str, dict] = {}
    for i in range(repeat + 1):  # one more round for the import report, on fresh inputs
        for n in range(len(roots)):
            write_votes(work / f"votes_{n}_{i}.csv", stimuli, f"{n}-{i}")
        rounds = {version: commands(work, n, i) for n, version in enumerate(roots)}
        for name in rounds["now"]:
            for version, root in roots.items():
                args = rounds[version][name]
                argv = [sys.executable, "-m", "disfer.cli", "--db", str(copies[version]), "--quiet", *args]
                if i == repeat:
                    runs = times[name, version]
                    results.setdefault(name, {})[version] = (statistics.median(runs), min(runs),
                                                             heavy_imports(argv, root))
                    continue
                seconds, done = run(argv, root)
                if done.returncode != 0:
                    raise SystemExit(f"{version}: disfer {' '.join(args)} failed:\n{done.stderr[-2000:]}")
                times.setdefault((name, version), []).append(seconds)
    for name, code in (("python -c 'import torch'", "import torch"), ("python -c 'pass'", "pass")):
        runs = [run([sys.executable, "-c", code], ROOT)[0] for _ in range(repeat)]
        results[name] = {v: (statistics.median(runs), min(runs), []) for v in roots}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="cold runs per command (default 5)")
    parser.add_argument("--against", metavar="GIT_REF", help="also time the package at this git ref")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    with tempfile.TemporaryDirectory(prefix="disfer-bench-cli-") as tmp:
        work = Path(tmp)
        roots = {"now": ROOT}
        if args.against:
            roots = {args.against: package_at(args.against, work / "against"), "now": ROOT}
        stores = {}
        for n, (version, root) in enumerate(roots.items()):
            stores[version] = store = work / f"store_{n}.duckdb"
            print(f"building the demo study (--no-finetune) with {version} in {store} ...", flush=True)
            seconds, done = run([sys.executable, "-m", "disfer.cli", "--db", str(store), "--quiet", "demo",
                                 "--no-finetune"], root)
            if done.returncode != 0:
                raise SystemExit(f"{version}: demo failed:\n{done.stderr[-2000:]}")
            print(f"  built in {seconds:.1f} s")
        results = time_versions(stores, work, roots, args.repeat)

    print(f"\ncold-process wall time, median (fastest) of {args.repeat} runs, seconds; "
          "heavy libraries imported")
    head = f"{'command':<26}" + "".join(f"{v[:16]:>18}" for v in roots) + "  imports"
    print(head)
    print("-" * len(head))
    for name, per_version in results.items():
        cells = "".join(f"{m:>8.2f} ({f:.2f})   " for m, f, _ in per_version.values())
        heavy = "  |  ".join(f"{v}: {','.join(h) or '-'}" for v, (_, _, h) in per_version.items()) \
            if not name.startswith("python") else ""
        print(f"{name:<26}{cells}{heavy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
