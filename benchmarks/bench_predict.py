"""Inference speed: DeepFace.analyze one image at a time vs `disfer predict`, and the mini-Xception.

    .venv/bin/python benchmarks/bench_predict.py [--device cpu|cuda|auto] [--n 20000] [--threads 2]

Prints images per second of:
  deepface  (a) DeepFace.analyze(img, actions=['emotion'], detector_backend='skip'), one image
                per call, as a user of that library would;
            bare  the same network, batched forward pass only (preprocessing on the device);
            (b) predict_store end to end (read pixels, preprocess, forward, write to the store);
  minixception  bare eager, bare compiled, predict_store end to end.
Goals (issue 9): on the CPU, (b) within 10 % of bare for DeepFace and >= 2,500 img/s end to end
for the mini-Xception; on a GPU, (b) >= 50 x (a) and >= 20,000 img/s for DeepFace.

Without the real DeepFace weights (they cannot be downloaded here) a randomly initialised file
of the right architecture and format is written to a temporary DEEPFACE_HOME: speed does not
depend on the values of the weights. Faces are the real FER-2013 test faces where
../shared/data/fer2013_test.csv exists, else random.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEEPFACE_BACKEND_ENGINE", "pytorch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
FER2013_TEST = ROOT.parent / "shared" / "data" / "fer2013_test.csv"


def load_faces(n: int) -> tuple[np.ndarray, str]:
    if FER2013_TEST.exists():
        frame = pd.read_csv(FER2013_TEST)
        faces = np.stack([np.asarray(p.split(), np.uint8).reshape(48, 48) for p in frame.pixels])
        source = "FER-2013 test faces"
    else:
        faces = np.random.default_rng(0).integers(0, 256, (n, 48, 48), dtype=np.uint8)
        source = "random faces"
    reps = -(-n // len(faces))
    return np.concatenate([faces] * reps)[:n], source


def make_store(folder: Path, faces: np.ndarray):
    from disfer.store import Store

    store = Store(folder / "bench.duckdb")
    ids = np.arange(len(faces), dtype=np.int32)
    frame = pd.DataFrame({"source_id": ids, "pixels": [f.tobytes() for f in faces],
                          "stimulus_id": [f"{i}-original-0" for i in ids]})
    with store.write() as con:
        con.register("f", frame)
        con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label, pixels) "
                    "SELECT source_id, 'bench', source_id, 'neutral', pixels FROM f")
        con.execute("INSERT INTO stimuli (stimulus_id, source_id, distortion, level, seed, pixels) "
                    "SELECT stimulus_id, source_id, 'original', 0, 0, pixels FROM f")
    return store


def ensure_deepface_weights(tmp: Path) -> str:
    from disfer.models.deepface_net import DeepFaceEmotion, deepface_weights_dir

    if DeepFaceEmotion.find_weights() is not None:
        return "real weights"
    os.environ["DEEPFACE_HOME"] = str(tmp / "deepface_home")
    path = deepface_weights_dir() / DeepFaceEmotion.weights_file
    path.parent.mkdir(parents=True, exist_ok=True)
    state = DeepFaceEmotion(device="cpu").build().state_dict()
    # Random weights give near-uniform outputs; a larger last layer makes the comparison of
    # DeepFace.analyze with our path below a test of something.
    state["fc_3.weight"] *= 300
    torch.save(state, path)
    return "random weights (right architecture and format)"


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:10,.0f} img/s  ({n:,} in {seconds:.2f} s)"


def bare(model, faces: np.ndarray, batch: int) -> float:
    """Seconds for preprocessing + forward of all faces, nothing else."""
    model.load()
    with torch.inference_mode():
        model._forward(model.preprocess(faces[:batch]))          # warm-up
        sync(model.device)
        start = time.perf_counter()
        for i in range(0, len(faces) - batch + 1, batch):
            model._forward(model.preprocess(faces[i:i + batch]))
        sync(model.device)
    return time.perf_counter() - start, (len(faces) // batch) * batch


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_deepface(args, faces, tmp: Path) -> None:
    from disfer.models import load_model
    from disfer.models.predict import predict_store

    print(f"deepface ({ensure_deepface_weights(tmp)})")
    from deepface import DeepFace

    n_a = min(args.analyze_n, len(faces))
    bgr = [np.repeat(f[:, :, None], 3, axis=2) for f in faces[:n_a]]
    DeepFace.analyze(bgr[0], actions=["emotion"], detector_backend="skip", silent=True)   # loads model
    start = time.perf_counter()
    theirs = [DeepFace.analyze(img, actions=["emotion"], detector_backend="skip", silent=True)[0]
              for img in bgr]
    t_a = time.perf_counter() - start
    print(f"  (a) DeepFace.analyze, one at a time   {rate(n_a, t_a)}")

    model = load_model("deepface", device=args.device)
    t_bare, n_bare = bare(model, faces, args.batch or model.default_batch())
    print(f"  bare batched forward                  {rate(n_bare, t_bare)}")

    store = make_store(tmp / "deepface", faces)
    start = time.perf_counter()
    n_b = predict_store(store, "deepface", device=args.device, batch=args.batch)
    t_b = time.perf_counter() - start
    print(f"  (b) disfer predict, end to end        {rate(n_b, t_b)}")
    r_a, r_bare, r_b = n_a / t_a, n_bare / t_bare, n_b / t_b
    print(f"  (b)/(a) = {r_b / r_a:.1f} x;  (b)/bare = {r_b / r_bare:.1%}")

    ours = model.predict_proba(faces[:n_a])
    names = {"anger": "angry", "happiness": "happy", "sadness": "sad"}
    from disfer.emotions import EMOTIONS

    ref = np.array([[t["emotion"][names.get(e, e)] / 100 for e in EMOTIONS] for t in theirs])
    agree = (ref.argmax(1) == ours.argmax(1)).mean()
    print(f"  analyze vs ours: max |p diff| {np.abs(ref - ours).max():.4f}, same top class {agree:.1%}"
          " (analyze resamples the face to 224x224 and back)")


def bench_minixception(args, faces, tmp: Path) -> None:
    from disfer.models import load_model
    from disfer.models.predict import predict_store

    print("minixception")
    model = load_model("minixception", device=args.device)
    batch = args.batch or model.default_batch()
    t, n = bare(model, faces[: min(len(faces), 8192)], batch)
    print(f"  bare eager forward                    {rate(n, t)}")
    if model.device.type == "cpu":
        start = time.perf_counter()
        ok = model.enable_compile()
        print(f"  torch.compile: {'ok' if ok else 'unavailable'} in {time.perf_counter() - start:.1f} s "
              "(cached on disk after the first run)")
        t, n = bare(model, faces, model._fast_batch or batch)
        print(f"  bare compiled forward                 {rate(n, t)}")
    store = make_store(tmp / "minixception", faces)
    start = time.perf_counter()
    n = predict_store(store, "minixception", device=args.device, batch=args.batch)
    print(f"  disfer predict, end to end            {rate(n, time.perf_counter() - start)}"
          "  (includes loading and compiling)")
    with store.read() as con:
        seconds, compiling = con.execute("SELECT result->>'seconds', result->>'compile_seconds' "
                                         "FROM runs WHERE kind = 'predict'").fetchone()
    steady = float(seconds) - float(compiling)
    print(f"  disfer predict, without compiling     {rate(n, steady)}  (compiling took {float(compiling):.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--n", type=int, default=20_000, help="images for the batched runs")
    parser.add_argument("--analyze-n", type=int, default=500, help="images for DeepFace.analyze")
    parser.add_argument("--batch", type=int, help="default: the model's own for the device")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--models", default="deepface,minixception")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ["DISFER_LOCK_TIMEOUT"] = "60"
    faces, source = load_faces(args.n)
    device = torch.cuda.get_device_name() if args.device != "cpu" and torch.cuda.is_available() else (
        f"CPU, {torch.get_num_threads()} threads")
    print(f"bench_predict: {len(faces):,} {source}, batch {args.batch or 'model default'}, device {args.device} ({device}), "
          f"torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            {"deepface": bench_deepface, "minixception": bench_minixception}[name](args, faces, Path(tmp))


if __name__ == "__main__":
    main()
