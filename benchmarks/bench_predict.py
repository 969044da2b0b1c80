"""Inference speed: CPU runtimes side by side, DeepFace.analyze, and `disfer predict` end to end.

    .venv/bin/python benchmarks/bench_predict.py [--device cpu|cuda|auto] [--n 4096] [--threads 2]

For each of the mini-Xception and the DeepFace network, in one run (this machine is too noisy for
absolute goals; compare the ratios):
  bare forward (uint8 faces -> probabilities, nothing else), images per second, of torch eager,
  torch.compile, ONNX Runtime and OpenVINO (the export made by disfer.models.runtimes), each with
  its max abs difference from eager on the same faces (goal: <= 1e-5);
  `disfer predict` end to end (read pixels, infer, write to the store) with the default runtime,
  and its ratio to that runtime's bare forward (goal: >= 90 %), both over the whole run and
  without the one-off setup (loading and checking the cached export, or compiling).
DeepFace also gets (a) DeepFace.analyze(img, detector_backend='skip'), one image per call, as a
user of that library would, and how far its probabilities are from ours (goal, issue 9: predict
>= 50 x (a) on a GPU). --sweep adds the runtimes' bare forward at other batch sizes.

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
    return f"{n / seconds:8,.0f} img/s  ({n:,} in {seconds:6.2f} s)"


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(forward, faces: np.ndarray, batch: int, device) -> tuple[float, int]:
    """Seconds and images of `forward` over whole batches of `faces`, after one warm-up batch."""
    with torch.inference_mode():
        forward(faces[:batch])
        sync(device)
        start = time.perf_counter()
        n = (len(faces) // batch) * batch
        for i in range(0, n, batch):
            forward(faces[i:i + batch])
        sync(device)
    return time.perf_counter() - start, n


def torch_forward(model):
    """uint8 faces -> probabilities through the model's torch path (eager or compiled)."""
    def forward(faces):
        logits = model.logits_to_canonical(model._forward(model.preprocess(faces)).float())
        return torch.softmax(logits, dim=1)
    return forward


def bench_runtimes(args, name: str, faces: np.ndarray, tmp: Path) -> None:
    """Every runtime's bare forward, its agreement with eager, then `disfer predict` end to end."""
    from disfer.models import load_model
    from disfer.models import runtimes as R
    from disfer.models.compiled import compile_network
    from disfer.models.predict import predict_store

    model = load_model(name, device=args.device).load()
    store = make_store(tmp / name, faces)
    folder = R.export_folder(store)   # the export made here is the one predict then finds cached
    check = faces[:args.check_n]
    eager_probs = model.predict_proba(check)
    bare_rate: dict[str, float] = {}

    def report(label: str, seconds: float, n: int, probs: np.ndarray | None, note: str = "") -> None:
        diff = f"max |diff| vs eager {np.abs(probs - eager_probs).max():.1e}" if probs is not None else ""
        print(f"  {label:<28} {rate(n, seconds)}  {diff}{note}")

    batch = args.batch or model.default_batch()
    eager_batch = min(batch, args.eager_n)  # eager runs a few hundred img/s on a busy CPU: fewer faces
    t, n = timed(torch_forward(model), faces[:args.eager_n], eager_batch, model.device)
    bare_rate[R.TORCH] = n / t
    report(f"torch eager (batch {eager_batch})", t, n, None)
    if model.device.type == "cpu":
        tick = time.perf_counter()
        model._fast = compile_network(model.network)
        if model._fast is not None:
            # Static shapes, as predict_store runs them (the mini-Xception's own compiled batch).
            model._fast_batch = getattr(sys.modules[type(model).__module__], "COMPILED_BATCH", batch)
            t, n = timed(torch_forward(model), faces, model._fast_batch, model.device)
            bare_rate["torch.compile"] = n / t
            report(f"torch.compile (batch {model._fast_batch})", t, n, model.predict_proba(check),
                   f"  (compiled in {time.perf_counter() - tick - t:.0f} s)")
        model._fast, model._fast_batch = None, 0
        for runtime in R.EXPORTED_RUNTIMES:
            if not R.installed(runtime):
                print(f"  {runtime:<28} not installed")
                continue
            tick = time.perf_counter()
            model.enable_runtime(runtime, folder)
            setup = time.perf_counter() - tick
            exported = model._exported
            for b in [exported.batch] + ([64, 256, 1024] if args.sweep else []):
                t, n = timed(exported.forward, faces, b, model.device)
                if b == exported.batch:
                    bare_rate[runtime] = n / t
                report(f"{runtime} (batch {b})", t, n, model.predict_proba(check) if b == exported.batch else None,
                       f"  (export/load {setup:.1f} s)" if b == exported.batch else "")
            model._exported = None
    start = time.perf_counter()
    n = predict_store(store, name, device=args.device, batch=args.batch)
    whole = time.perf_counter() - start
    with store.read() as con:
        runtime, compiled, seconds, setup = con.execute(
            "SELECT config->>'runtime', (config->>'compiled')::BOOLEAN, (result->>'seconds')::DOUBLE, "
            "(result->>'setup_seconds')::DOUBLE FROM runs WHERE kind = 'predict'").fetchone()
    runtime = "torch.compile" if compiled else runtime
    steady = seconds - setup
    print(f"  disfer predict ({runtime}), whole    {rate(n, whole)}  = {n / whole / bare_rate[runtime]:.1%} of its bare forward")
    print(f"  disfer predict, without setup     {rate(n, steady)}  = {n / steady / bare_rate[runtime]:.1%} "
          f"(setup {setup:.1f} s: load and check the cached export, or compile)")


def bench_analyze(args, faces: np.ndarray) -> None:
    """DeepFace.analyze one image at a time, and how far its probabilities are from ours."""
    from deepface import DeepFace

    from disfer.emotions import EMOTIONS
    from disfer.models import load_model

    n_a = min(args.analyze_n, len(faces))
    if n_a == 0:
        return
    bgr = [np.repeat(f[:, :, None], 3, axis=2) for f in faces[:n_a]]
    DeepFace.analyze(bgr[0], actions=["emotion"], detector_backend="skip", silent=True)   # loads model
    start = time.perf_counter()
    theirs = [DeepFace.analyze(img, actions=["emotion"], detector_backend="skip", silent=True)[0]
              for img in bgr]
    t_a = time.perf_counter() - start
    print(f"  (a) DeepFace.analyze, one at a time {rate(n_a, t_a)}")
    ours = load_model("deepface", device=args.device).predict_proba(faces[:n_a])
    names = {"anger": "angry", "happiness": "happy", "sadness": "sad"}
    ref = np.array([[t["emotion"][names.get(e, e)] / 100 for e in EMOTIONS] for t in theirs])
    agree = (ref.argmax(1) == ours.argmax(1)).mean()
    print(f"  analyze vs ours: max |p diff| {np.abs(ref - ours).max():.4f}, same top class {agree:.1%}"
          " (analyze resamples the face to 224x224 and back)")


def bench_deepface(args, faces, tmp: Path) -> None:
    print(f"deepface ({ensure_deepface_weights(tmp)})")
    bench_runtimes(args, "deepface", faces, tmp)
    bench_analyze(args, faces)


def bench_minixception(args, faces, tmp: Path) -> None:
    print("minixception")
    bench_runtimes(args, "minixception", faces, tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--n", type=int, default=4096, help="images for the batched runs")
    parser.add_argument("--eager-n", type=int, default=1024, help="images for the (slow) eager forward")
    parser.add_argument("--check-n", type=int, default=1024, help="images the runtimes are compared on")
    parser.add_argument("--analyze-n", type=int, default=200, help="images for DeepFace.analyze")
    parser.add_argument("--sweep", action="store_true", help="runtimes at other batch sizes too")
    parser.add_argument("--batch", type=int, help="default: the model's own for the device")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--models", default="minixception,deepface")
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
        for name in args.models.split(","):  # mini-Xception first: its export is the quick one
            {"deepface": bench_deepface, "minixception": bench_minixception}[name](args, faces, Path(tmp))


if __name__ == "__main__":
    main()
