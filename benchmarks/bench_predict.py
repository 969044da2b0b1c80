"""Inference speed: CPU runtimes side by side, DeepFace.analyze, and `disfer predict` end to end.

    .venv/bin/python benchmarks/bench_predict.py [--device cpu|cuda|auto] [--n 4096] [--rounds 3] [--threads 2] [--sweep]
                                                 [--models minixception,deepface] [--no-compile]

For each of the mini-Xception and the DeepFace network, in one run (this machine is too noisy for
absolute goals; compare the ratios):
  bare forward (uint8 faces -> probabilities, nothing else), images per second, of torch eager,
  torch.compile, ONNX Runtime and OpenVINO (the export made by disfer.models.runtimes), each with
  its max abs difference from eager on the same faces (goal: <= 1e-5);
  `disfer predict` end to end (read pixels, infer, write to the store) with the default runtime,
  and its ratio to that runtime's bare forward (goal: >= 90 %), both over the whole run and
  without the one-off setup (loading and checking the cached export, or compiling).
  The measurements are interleaved over --rounds rounds (the load of a shared machine changes
  from one second to the next) and summed.
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
    batch = min(batch, len(faces))   # a batch larger than the faces would time nothing
    with torch.inference_mode():
        forward(faces[:batch])
        sync(device)
        start = time.perf_counter()
        n = (len(faces) // batch) * batch
        for i in range(0, n, batch):
            forward(faces[i:i + batch])
        sync(device)
    return time.perf_counter() - start, n


def torch_forward(model, network=None):
    """uint8 faces -> probabilities through torch: the model's eager network, or `network`."""
    forward = network or model.network

    def probabilities(faces):
        return torch.softmax(model.logits_to_canonical(forward(model.preprocess(faces)).float()), dim=1)
    return probabilities


def bench_runtimes(args, name: str, faces: np.ndarray, tmp: Path) -> None:
    """Every runtime's bare forward, its agreement with eager, then `disfer predict` end to end.

    The load of a shared machine changes from one second to the next, so the measurements are
    interleaved: each of `--rounds` rounds times every runtime once and `disfer predict` once (on
    a fresh copy of the predictions), and the figures are the totals over the rounds.
    """
    from disfer.models import load_model
    from disfer.models import runtimes as R
    from disfer.models.compiled import compile_network
    from disfer.models.predict import predict_store

    model = load_model(name, device=args.device).load()
    store = make_store(tmp / name, faces)
    folder = R.export_folder(store)   # the export made here is the one predict then finds cached
    check = faces[:args.check_n]
    eager_probs = model.predict_proba(check)
    batch = args.batch or model.default_batch()
    eager_batch = min(batch, args.eager_n)
    # label -> (forward, batch, faces per round, max |diff| vs eager, note)
    forwards: dict[str, tuple] = {
        R.TORCH: (torch_forward(model), eager_batch, faces[:args.eager_n], 0.0,
                  "(fewer faces: slow)" if model.device.type == "cpu" else "")}
    if model.device.type == "cpu":
        tick = time.perf_counter()
        compiled = None if args.no_compile else compile_network(model.network)
        if compiled is not None:
            # Static shapes, as predict_store runs them (the mini-Xception's own compiled batch).
            fast_batch = getattr(sys.modules[type(model).__module__], "COMPILED_BATCH", batch)
            model._fast, model._fast_batch = compiled, fast_batch
            diff = np.abs(model.predict_proba(check) - eager_probs).max()   # compiles, for this shape
            model._fast, model._fast_batch = None, 0
            forwards["torch.compile"] = (torch_forward(model, compiled), fast_batch, faces, diff,
                                         f"(compiled in {time.perf_counter() - tick:.0f} s)")
        for runtime in R.EXPORTED_RUNTIMES:
            if not R.installed(runtime):
                print(f"  {runtime:<28} not installed")
                continue
            tick = time.perf_counter()
            model.enable_runtime(runtime, folder)
            exported, model._exported = model._exported, None
            diff = np.abs(exported.predict_proba(check) - eager_probs).max()
            forwards[runtime] = (exported.forward, exported.batch, faces, diff,
                                 f"(export or load {time.perf_counter() - tick:.1f} s)")
            for b in [64, 256, 1024] if args.sweep else []:
                forwards[f"{runtime} b{b}"] = (exported.forward, b, faces, diff, "")
    seconds = dict.fromkeys(forwards, 0.0)
    images = dict.fromkeys(forwards, 0)
    e2e = {"n": 0, "whole": 0.0, "setup": 0.0}
    used = None
    for _ in range(args.rounds):
        for label, (forward, b, chunk, _, _) in forwards.items():
            t, n = timed(forward, chunk, b, model.device)
            seconds[label] += t
            images[label] += n
        with store.write() as con:
            con.execute("DELETE FROM predictions")
        start = time.perf_counter()
        e2e["n"] += predict_store(store, name, device=args.device, batch=args.batch)
        e2e["whole"] += time.perf_counter() - start
        with store.read() as con:
            runtime, compiled, setup = con.execute(
                "SELECT config->>'runtime', (config->>'compiled')::BOOLEAN, (result->>'setup_seconds')::DOUBLE "
                "FROM runs WHERE kind = 'predict' ORDER BY run_id DESC LIMIT 1").fetchone()
        e2e["setup"] += setup
        used = "torch.compile" if compiled else runtime
    for label, (_, b, _, diff, note) in forwards.items():
        print(f"  {label + f' (batch {b})':<30} {rate(images[label], seconds[label])}  "
              f"max |diff| vs eager {diff:.1e}  {note}")
    bare = images[used] / seconds[used]
    n, whole, steady = e2e["n"], e2e["whole"], e2e["whole"] - e2e["setup"]
    print(f"  disfer predict ({used}), whole   {rate(n, whole)}  = {n / whole / bare:.1%} of its bare forward")
    print(f"  disfer predict, without setup   {rate(n, steady)}  = {n / steady / bare:.1%} "
          f"(setup {e2e['setup']:.1f} s in all: load the cached export, or compile)")


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
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every measurement")
    parser.add_argument("--eager-n", type=int, default=512, help="images for the (slow) eager forward")
    parser.add_argument("--check-n", type=int, default=1024, help="images the runtimes are compared on")
    parser.add_argument("--analyze-n", type=int, default=200, help="images for DeepFace.analyze")
    parser.add_argument("--sweep", action="store_true", help="runtimes at other batch sizes too")
    parser.add_argument("--batch", type=int, help="default: the model's own for the device")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--models", default="minixception,deepface")
    parser.add_argument("--no-compile", action="store_true",
                        help="leave torch.compile out (the slowest CPU runtime: minutes at --n 20000)")
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
