"""Benchmark: one epoch of the paper's fine-tuning protocol (27 batches of 42 images) per model.

    .venv/bin/python benchmarks/bench_finetune.py [--device cpu|cuda|auto] [--models a,b]
                                                  [--random-weights] [--epochs 2]

The study is the paper's design on real faces where ../shared/data/fer2013_test.csv exists
(84 faces of PublicTest, 840 stimuli), else on random faces of the same design. Each model trains
for --epochs epochs of gaussian_noise; the figure reported is the last epoch (the first pays for
one-off set-up: oneDNN/cuDNN kernel selection), training only, without the validation pass.
Models whose weights are absent are skipped, or with --random-weights timed on their real
architecture with random weights (the time does not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL_TEST = ROOT.parent / "shared" / "data" / "fer2013_test.csv"


def make_study(folder: Path):
    from disfer.data.build import build_study
    from disfer.emotions import EMOTIONS
    from disfer.images import N_PIXELS
    from disfer.store import Store

    store = Store(folder / "bench.duckdb")
    if REAL_TEST.exists():
        from disfer.data.ingest import ingest_fer2013

        ingest_fer2013(store, REAL_TEST)
        build_study(store, per_class=12, seed=0, split="PublicTest")
        return store, "real FER-2013 PublicTest faces"
    rng = np.random.default_rng(0)
    n = 12 * len(EMOTIONS)
    df = pd.DataFrame({"source_id": np.arange(1, n + 1), "dataset": "bench", "original_index": np.arange(n),
                       "original_label": [EMOTIONS[i % 7] for i in range(n)],
                       "pixels": [rng.integers(0, 256, N_PIXELS, dtype=np.uint8).tobytes() for _ in range(n)]})
    with store.write() as con:
        con.register("df", df)
        con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label, pixels) "
                    "SELECT * FROM df")
    build_study(store, per_class=12, seed=0)
    return store, "random faces"


def load(name: str, device: str, random_weights: bool):
    from disfer.models.registry import load_model

    model = load_model(name, device=device)
    if model.weights_path is not None:
        return model, "real weights"
    if not random_weights:
        return None, f"skipped: weights absent ({model.where_hint()})"
    import torch

    # Benchmark only: the real architecture with random weights, placed as the adapter would.
    net = model.build().eval()
    model._network = net.to(model.device, memory_format=torch.channels_last)
    return model, "random weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="minixception,deepface,rmn")
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    import torch

    from disfer.finetune.pools import paper_pool
    from disfer.finetune.train import TrainConfig, train
    from disfer.progress import set_quiet

    set_quiet(True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device != "cpu" and torch.cuda.is_available() else ""))
    with tempfile.TemporaryDirectory() as tmp:
        store, what = make_study(Path(tmp))
        pool = paper_pool(store, "gaussian_noise", seed=0)
        print(f"study: {what}; {len(pool.train)} training / {len(pool.val)} validation images")
        for name in args.models.split(","):
            model, how = load(name, args.device, args.random_weights)
            if model is None:
                print(f"{name:<14} {how}")
                continue
            t0 = time.perf_counter()
            result = train(model, pool.train, pool.val, TrainConfig(epochs=args.epochs, seed=0))
            last = result.curve[-1]
            images = 27 * 42
            print(f"{name:<14} {how:<15} {last['seconds']:8.2f} s/epoch  {images / last['seconds']:9.1f} images/s"
                  f"  (first epoch {result.curve[1]['seconds']:.2f} s, whole run {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
