"""`disfer finetune`: the clean external protocol, the paper's, or the curated dataset's.

`disfer.finetune` imports torch (seconds), so this module imports it only when `finetune` itself
is parsed or run, never while the parser of every other command is built.
"""

from __future__ import annotations

import json

DESCRIPTION = ("Fine-tune a model (by default on faces outside the study, so the study stays a clean "
               "test set), register the result as a new model variant, and run it on every stimulus.")


def _run(args) -> int:
    from disfer.finetune import finetune, plural, variant_summary  # torch: only when fine-tuning (speed)

    def show(row: dict) -> None:
        if args.quiet:
            return
        train = ("" if row["train_loss"] is None else
                 f"train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f}  ")
        took = f"  {row['seconds']:.1f} s" if row["epoch"] else ""   # epoch 0 is the parent: not trained
        print(f"epoch {row['epoch']:>3}  {train}val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.3f}{took}",
              flush=True)

    variant = finetune(args.store, args.model, protocol=args.protocol, distortion=args.distortion,
                       targets=args.targets, epochs=args.epochs, seed=args.seed, device=args.device,
                       augment=args.augment, lr=args.lr, batches=args.batches,
                       per_class=args.per_class, on_epoch=show, train_split=args.train_split,
                       train_layers=args.train_layers, level_mix=args.level_mix)
    summary = variant_summary(args.store, variant)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{variant}: {plural(summary['epochs'], 'epoch')}, best epoch {summary['best_epoch']} "
              f"(validation accuracy {summary['best_val_accuracy']:.3f}, parent "
              f"{summary['parent_val_accuracy']:.3f}); {summary['train_images']} training / "
              f"{summary['val_images']} validation images; {summary['seconds_per_epoch']:.1f} s per epoch; "
              f"weights {summary['weights_path']}; {summary['predictions']} "
              f"{'stimulus' if summary['predictions'] == 1 else 'stimuli'} predicted")
        if summary["validation_note"]:
            print(f"warning: {variant} is {summary['validation_note']} (registered all the same)")
        print(f"note: {summary['evaluation_note']}")
    return 0


def _arguments(p) -> None:
    # The defaults and choices are disfer.finetune's own; importing it imports torch, so this runs
    # only when `disfer finetune` is parsed (cli.CommandParser), for speed.
    from disfer.finetune import (
        DEFAULT_EPOCHS,
        DEFAULT_LR,
        DEFAULT_PROTOCOL,
        MAX_BATCHES,
        MAX_EPOCHS,
        PROTOCOLS,
    )
    from disfer.finetune.sampling import BATCHES_PER_EPOCH, PER_CLASS
    from disfer.finetune.targets import SCHEMES
    from disfer.finetune.train import LEVEL_MIXES, TRAIN_LAYERS

    p.add_argument("--model", required=True, help="model to start from (see `disfer models`)")
    p.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                   help="external (default): faces outside the study, the study's distortion rendered "
                        "on the fly, the study a clean test set; paper: the study's own stimuli per "
                        "distortion (its evaluation includes training images); curated: the curated "
                        "dataset (curated labels where decided, original labels elsewhere)")
    p.add_argument("--distortion", help="distortion type (required by the paper protocol; restricts "
                                        "the external and curated ones, which otherwise use all)")
    p.add_argument("--train-split", "--split", dest="train_split",
                   help="train on the faces of this split only (the ingest's Usage column): external "
                        "protocol, the outside faces of it (e.g. Training, or PrivateTest for a "
                        "PublicTest study); curated protocol, the study's faces of it")
    p.add_argument("--targets", choices=SCHEMES,
                   help="target scheme for --protocol curated (default majority)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help=f"1 to {MAX_EPOCHS}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help="Adam learning rate")
    p.add_argument("--batches", type=int, default=BATCHES_PER_EPOCH,
                   help=f"batches per epoch (paper: {BATCHES_PER_EPOCH}; at most {MAX_BATCHES})")
    p.add_argument("--per-class", type=int, default=PER_CLASS,
                   help=f"images of each emotion per batch (paper: {PER_CLASS}, half distorted)")
    p.add_argument("--train-layers", choices=TRAIN_LAYERS, default=TRAIN_LAYERS[0],
                   help="all (default), or head: only the layer that emits the logits trains, the "
                        "rest (batch-norm statistics included) stays the parent's")
    p.add_argument("--level-mix", choices=LEVEL_MIXES, default=LEVEL_MIXES[0],
                   help="levels of the distortions rendered on the fly (external, or --augment): "
                        "uniform (each level equally often), strongest (level k with weight k), "
                        "range (the parameter uniform between the weakest and strongest level's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--augment", action="store_true",
                   help="render the distorted half of each batch on the fly (registry distortions)")
    p.add_argument("--json", action="store_true", help="print the variant's summary as JSON")
    p.set_defaults(func=_run)


def register(sub) -> None:
    sub.add_parser("finetune", help="fine-tune a model (paper protocol or curated labels)",
                   description=DESCRIPTION, arguments=_arguments)
