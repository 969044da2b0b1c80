"""CLI: models, predict, evaluate, saliency.

Handlers import their module on use, so `disfer --help` stays fast (torch is not loaded).
"""

from __future__ import annotations

import json

from disfer.errors import ConfigError
from disfer.models import runtimes as R  # names only: imports no torch


def register(sub) -> None:
    p = sub.add_parser("models", help="the FER models, whether their weights are present, and where")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(func=_models)

    p = sub.add_parser("predict", help="run a model on every stimulus it has not yet seen")
    _model_options(p)
    p.add_argument("--batch", type=int,
                   help="images per batch and per store write (default: the model's, larger on a GPU)")
    p.add_argument("--threads", type=int, help="CPU threads (default: one per core)")
    p.add_argument("--runtime", default=R.AUTO, choices=R.RUNTIME_CHOICES,
                   help=f"what runs the network (default auto: {R.CPU_DEFAULT_RUNTIME} on the CPU for "
                        "mini-Xception and DeepFace, from an export cached beside the store; torch on a "
                        "GPU and for RMN)")
    p.add_argument("--no-compile", action="store_true",
                   help="never use torch.compile (default: mini-Xception on large CPU runs on torch)")
    p.set_defaults(func=_predict)

    p = sub.add_parser("evaluate", help="accuracy of a model on a labelled CSV or image folder "
                                        "(the store is not touched)")
    _model_options(p)
    p.add_argument("data", help="FER-2013-format CSV (emotion,pixels[,Usage]) or <root>/<emotion>/ images")
    p.add_argument("--split", help="only rows with this Usage (e.g. PublicTest)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--json", action="store_true",
                   help='print {"model", "n", "accuracy", "recall", "confusion"}')
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("saliency", help="Grad-CAM and Gradient SHAP PNGs of one stimulus")
    _model_options(p)
    p.add_argument("stimulus", help="stimulus id, e.g. 17-gaussian_blur-2")
    p.add_argument("--out", default="saliency", help="folder for the PNGs (default ./saliency)")
    p.add_argument("--target", help="emotion to explain (default: the model's prediction)")
    p.add_argument("--samples", type=int, default=None,
                   help="Gradient SHAP samples (default 16; more give a smoother map, slower)")
    p.set_defaults(func=_saliency, read_only=True)


def _model_options(p) -> None:
    p.add_argument("--model", required=True, help="minixception, deepface, rmn or a fine-tuned variant id")
    p.add_argument("--variant", help="fine-tuned variant: its full id, or the part after '<model>-ft-'")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--weights", help="weights file to use instead of the one found (e.g. an RMN checkpoint)")


def _model_id(args) -> str:
    if not args.variant:
        return args.model
    return args.variant if args.variant.startswith(f"{args.model}-") else f"{args.model}-ft-{args.variant}"


def _models(args) -> int:
    from disfer.models import list_models

    infos = list_models(args.store)
    if args.json:
        from dataclasses import asdict

        print(json.dumps([asdict(i) for i in infos], indent=2))
        return 0
    for info in infos:
        print(info.line())
    return 0


def _predict(args) -> int:
    import sys

    import torch

    from disfer.models import load_model
    from disfer.models.predict import predict_store

    if args.threads:
        torch.set_num_threads(args.threads)
    model_id = _model_id(args)
    model = load_model(model_id, device=args.device, store=args.store, weights_path=args.weights)
    if model.family == "rmn" and model.device.type == "cpu":
        print("disfer: note: rmn is a 138M-parameter network at 224x224: a few images per second "
              "on a small CPU; use --device cuda for whole studies", file=sys.stderr)
    n = predict_store(args.store, model_id, device=args.device, batch=args.batch,
                      compile=False if args.no_compile else None, weights_path=args.weights,
                      runtime=args.runtime)
    print(f"{model_id}: predicted {n} stimuli" if n else f"{model_id}: every stimulus already predicted")
    return 0


def _evaluate(args) -> int:
    from disfer.emotions import EMOTIONS
    from disfer.models import load_model
    from disfer.models.evaluate import evaluate_file

    model_id = _model_id(args)
    model = load_model(model_id, device=args.device, store=args.store, weights_path=args.weights)
    result = evaluate_file(model_id, args.data, split=args.split, batch=args.batch, model=model)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(f"{result.model}: accuracy {result.accuracy:.2%} on {result.n} faces")
    for emotion in EMOTIONS:
        print(f"  recall {emotion:<10} {result.recall[emotion]:.2%}")
    print("confusion (rows: true, columns: predicted; " + ", ".join(e[:3] for e in EMOTIONS) + ")")
    for emotion, row in zip(EMOTIONS, result.confusion, strict=True):
        print(f"  {emotion[:3]} " + " ".join(f"{v:5d}" for v in row))
    return 0


def _saliency(args) -> int:
    from disfer.models.saliency import SHAP_SAMPLES, write_saliency_pngs

    samples = SHAP_SAMPLES if args.samples is None else args.samples
    if not 1 <= samples <= 10_000:
        raise ConfigError(f"--samples {samples}: give 1 to 10,000 Gradient SHAP samples")
    for path in write_saliency_pngs(args.store, _model_id(args), args.stimulus, args.out,
                                    target=args.target, device=args.device,
                                    weights_path=args.weights, n_samples=samples):
        print(path)
    return 0
