"""Fine-tuning FER models: the clean external protocol, the paper's, and the curated dataset's.

`finetune(store, "minixception", protocol="external", distortion="gaussian_noise")` trains a copy of
the model (see `pools` for what each protocol trains on and `sampling` for the source-disjoint
split and the batches), keeps the best epoch on validation, writes its
weights into the store's own checkpoint folder (`checkpoints`: `<store dir>/models/<store_id>/`),
registers the variant in the `models` table (family = the parent's, parent_id set, config = the
full configuration, split, training curve and the weights' sha256) and runs it on every stimulus,
so the analyses compare it with its parent and with people. Every check on the configuration
happens before training starts.

What a variant saw is recorded with it: `train_sources` and `val_sources` in its config, so the
analyses (`disfer.analysis.heldout`) compare it with its parent on the held-out faces only. The
`external` protocol (the default) trains on faces outside the study, so every study stimulus is
held out; `paper` trains on the study's own stimuli, as the paper did, and its evaluation on the
study includes training images; `curated` trains on the curated dataset (the study's faces).
A variant worse than its parent on validation is registered all the same, and flagged
(`worse_than_parent`, `validation_note`).

What a kill leaves: the run's row says 'running' until the variant is registered, and the
registration and the run's end are one transaction, so a variant is registered whole or not at
all (`disfer.runs.read_runs` shows a run whose process died as 'interrupted'). Its predictions
follow in batches, each kept; the next `disfer predict --model <variant>` completes them.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from disfer.access import Actor, require
from disfer.data.distortions import DISTORTIONS
from disfer.errors import ConfigError, DisferError
from disfer.finetune.checkpoints import SHA256_KEY, Checkpoint, write_checkpoint
from disfer.finetune.sampling import BATCHES_PER_EPOCH, PER_CLASS, VAL_FRACTION
from disfer.finetune.targets import check_scheme
from disfer.finetune.train import TrainConfig, check_level_mix, check_train_layers, train
from disfer.outfiles import safe_name
from disfer.progress import ProgressFn
from disfer.runs import finish_run, start_run
from disfer.store import Store

PROTOCOLS = ("external", "paper", "curated")
DEFAULT_PROTOCOL = "external"
DEFAULT_EPOCHS = 10
DEFAULT_LR = 1e-4
# Caps: a run is bounded for any caller (the dashboard lets signed-in visitors start runs).
MAX_EPOCHS = 50
MAX_BATCHES = 200
MAX_PER_CLASS = 32
PAPER_NOTE = ("its evaluation on the study includes training images (the paper's protocol trains on "
              "the study's own stimuli); compare on held-out faces")


def variant_id(model_id: str, protocol: str, distortion: str | None, targets: str | None,
               augment: bool = False, seed: int = 0, train_layers: str = "all",
               level_mix: str = "uniform") -> str:
    """`<parent>-ft-<distortion>` (paper), `<parent>-ft-external-<distortion or all>` or
    `<parent>-ft-curated-<targets>[-<distortion>]`, then `-aug` with augmentation, `-head` when the
    head alone trains, `-<level mix>` for a mix other than uniform, and `-s<seed>` for a seed
    other than 0."""
    if protocol == "paper":
        name = f"{model_id}-ft-{distortion}"
    elif protocol == "external":
        name = f"{model_id}-ft-external-{distortion or 'all'}"
    else:
        name = f"{model_id}-ft-curated-{targets}" + (f"-{distortion}" if distortion else "")
    return (name + ("-aug" if augment else "") + ("" if train_layers == "all" else f"-{train_layers}")
            + ("" if level_mix == "uniform" else f"-{level_mix}") + (f"-s{seed}" if seed else ""))


def weights_file(store: Store, variant: str) -> Path:
    """The weights file `variant` is registered with in `store` (its path in the models row)."""
    with store.read() as con:
        row = con.execute("SELECT weights_path FROM models WHERE model_id = ?", [variant]).fetchone()
    if row is None or row[0] is None:
        raise ConfigError(f"{variant!r} has no weights file registered in {store.path}")
    path = Path(row[0])
    return path if path.is_absolute() else Path(store.path).parent / path


def _check(protocol, distortion, targets, epochs, lr, batches, per_class,
           augment, train_split=None, train_layers="all", level_mix="uniform") -> tuple[str | None, str]:
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r} (expected {' or '.join(PROTOCOLS)})")
    if distortion is not None and (distortion not in DISTORTIONS or distortion == "original"):
        known = ", ".join(d for d in DISTORTIONS if d != "original")
        raise ConfigError(f"unknown distortion {distortion!r} (the registry has: {known})")
    if protocol == "paper":
        if distortion is None:
            raise ConfigError("the paper protocol fine-tunes per distortion: give --distortion "
                              f"({', '.join(d for d in DISTORTIONS if d != 'original')})")
        if targets not in (None, "majority"):
            raise ConfigError("the paper protocol trains on the original labels (sparse "
                              "categorical cross-entropy); --targets is for --protocol curated")
        targets = "majority"
    elif protocol == "external":
        if targets not in (None, "majority"):
            raise ConfigError("the external protocol trains on the outside faces' original labels; "
                              "--targets is for --protocol curated")
        if augment:
            raise ConfigError("the external protocol always renders the distorted half on the fly; "
                              "--augment is for --protocol paper or curated")
        targets = "majority"
    else:
        targets = check_scheme(targets or "majority")
    if train_split is not None and protocol == "paper":
        raise ConfigError("--train-split chooses the faces of the external or curated protocol; the "
                          "paper protocol trains on the study's stimuli")
    check_train_layers(train_layers)
    if check_level_mix(level_mix) != "uniform" and protocol != "external" and not augment:
        raise ConfigError("--level-mix shapes the distortions rendered on the fly: the external "
                          "protocol, or --augment")
    if not 1 <= epochs <= MAX_EPOCHS:
        raise ConfigError(f"epochs must be between 1 and {MAX_EPOCHS}, not {epochs}")
    if not 0 < lr <= 1:
        raise ConfigError(f"learning rate must be in (0, 1], not {lr}")
    if not 1 <= batches <= MAX_BATCHES:
        raise ConfigError(f"batches per epoch must be between 1 and {MAX_BATCHES}, not {batches}")
    if not 1 <= per_class <= MAX_PER_CLASS:
        raise ConfigError(f"images per emotion per batch must be between 1 and {MAX_PER_CLASS}, not {per_class}")
    return distortion, targets


def finetune(store: Store, model_id: str, protocol: str = DEFAULT_PROTOCOL, distortion: str | None = None,
             targets: str | None = None, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
             device: str = "auto", augment: bool = False, progress: ProgressFn | None = None,
             on_epoch: Callable[[dict], None] | None = None, lr: float = DEFAULT_LR,
             batches: int = BATCHES_PER_EPOCH, per_class: int = PER_CLASS,
             val_fraction: float = VAL_FRACTION, predict: bool = True,
             train_split: str | None = None, actor: Actor | str | None = None,
             train_layers: str = "all", level_mix: str = "uniform") -> str:
    """Fine-tune `model_id`, register the variant, predict every stimulus; returns the variant id.

    `on_epoch(row)` receives each training-curve row (epoch, train/val loss and accuracy) as it
    is made, for a live chart. `progress(fraction, text)` follows the batches. `train_split`
    (external and curated protocols): train on the faces of that split alone (the outside faces
    of it, or the study's). `train_layers`: `all`, or `head` (the layer emitting the logits) alone.
    `level_mix`: how the levels of the distortions rendered on the fly are drawn (`train`).
    `actor`: who runs it (a signed-in person needs the admin role); the run is signed by them.
    """
    if isinstance(actor, Actor):
        require(actor, "finetune")
    from disfer.models import load_model

    distortion, targets = _check(protocol, distortion, targets, epochs, lr, batches, per_class, augment,
                                 train_split, train_layers, level_mix)
    model = load_model(model_id, device=device, store=store)   # unknown model, missing GPU
    pool = _pool(store, protocol, distortion, seed, val_fraction, augment, train_split)
    model.load()   # weights present and readable, before any training
    variant = safe_name(variant_id(model_id, protocol, distortion, targets if protocol == "curated" else None,
                                   augment, seed, train_layers, level_mix), "variant name")   # it names the weights file
    if protocol == "external":   # the study's own distortion(s), at the study's levels
        render = pool.summary["render"]
        augment_with, params = tuple(render), tuple(tuple(v) for v in render.values())
    else:
        augment_with, params = (_augment_with(distortion) if augment else ()), ()
    config = TrainConfig(scheme=targets, epochs=epochs, lr=lr, batches=batches, per_class=per_class,
                         seed=seed, augment_with=augment_with, augment_params=params,
                         level_mix=level_mix, train_layers=train_layers)
    settings = {**_settings(model, protocol, distortion, augment, config, val_fraction),
                "train_split": train_split}
    with _tracked_run(store, {**settings, "variant": variant}, actor) as run_id:
        result = _train(model, pool, config, progress, on_epoch)
        checkpoint = write_checkpoint(store, variant, model.network.state_dict())
        _register(store, run_id, variant, model, checkpoint, _full_config(settings, pool, result))
    if predict:
        _predict(store, model_id, variant, device, progress)
    return variant


def _pool(store: Store, protocol: str, distortion: str | None, seed: int, val_fraction: float,
          augment: bool, train_split: str | None = None):
    """The train/validation pool of the protocol (see `pools`)."""
    from disfer.finetune.pools import curated_pool, external_pool, paper_pool
    from disfer.ledger import current_ground_truth

    if protocol == "paper":
        return paper_pool(store, distortion, seed=seed, val_fraction=val_fraction, augment=augment)
    gt = current_ground_truth(store)
    if protocol == "external":
        excluded = set(gt.loc[gt["status"] == "excluded", "source_id"].astype(int))
        return external_pool(store, distortion, seed=seed, val_fraction=val_fraction, excluded=excluded,
                             split=train_split)
    return curated_pool(store, gt, distortion, seed=seed, val_fraction=val_fraction, augment=augment,
                        split=train_split)


def _augment_with(distortion: str | None) -> tuple[str, ...]:
    """The distortions augmentation draws from: the one trained on, or all of them."""
    return (distortion,) if distortion else tuple(d for d in DISTORTIONS if d != "original")


def _settings(model, protocol: str, distortion: str | None, augment: bool, config: TrainConfig,
              val_fraction: float) -> dict:
    """The run's configuration as recorded in `runs` (and, completed, in `models`)."""
    return {
        "protocol": protocol, "parent": model.model_id, "distortion": distortion, "targets": config.scheme,
        "augment": augment, "augment_with": list(config.augment_with), "level_mix": config.level_mix,
        "train_layers": config.train_layers,
        "epochs": config.epochs, "seed": config.seed, "lr": config.lr, "optimizer": "Adam",
        "batches_per_epoch": config.batches, "images_per_emotion_per_batch": config.per_class,
        "batch_size": None, "val_fraction": val_fraction, "device": str(model.device),
        "torch": torch.__version__, "python": platform.python_version(),
    }


def _train(model, pool, config: TrainConfig, progress: ProgressFn | None,
           on_epoch: Callable[[dict], None] | None):
    """Train, then put the best epoch's weights in the model's network (the parent object is ours
    alone, so its network is reused)."""
    result = train(model, pool.train, pool.val, config, progress=progress, on_epoch=on_epoch)
    model.network.load_state_dict(result.state)
    return result


def _full_config(settings: dict, pool, result) -> dict:
    """The settings completed with what the run found: split, curve, best epoch, time."""
    best = result.curve[result.best_epoch]
    balanced = settings["protocol"] in ("paper", "external")   # every emotion present
    batch_size = 7 * settings["images_per_emotion_per_batch"] if balanced else None
    parent_val = result.curve[0]["val_accuracy"]
    epochs = [r["seconds"] for r in result.curve[1:]]
    return {**settings, "batch_size": batch_size, "split": pool.summary, "curve": result.curve,
            "train_sources": pool.split.train_sources, "val_sources": pool.split.val_sources,
            "best_epoch": result.best_epoch, "best_val_accuracy": best["val_accuracy"],
            "parent_val_accuracy": parent_val,
            "worse_than_parent": best["val_accuracy"] < parent_val,
            "evaluation_includes_training_images": settings["protocol"] != "external",
            "seconds_per_epoch": round(sum(epochs) / len(epochs), 3) if epochs else None,
            "seconds": round(result.seconds, 3)}


@contextmanager
def _tracked_run(store: Store, config: dict, actor: Actor | str | None = None) -> Iterator[int]:
    """A 'finetune' row in `runs` for the block, signed by `actor`; marked failed if the block raises."""
    with store.write() as con:
        run_id = start_run(con, "finetune", config, actor)
    try:
        yield run_id
    except BaseException as err:
        try:
            with store.write() as con:
                finish_run(con, run_id, "failed", {"error": str(err)[:500]})
        except DisferError:
            pass   # the store itself failed; the original error is the one to report
        raise


def _register(store: Store, run_id: int, variant: str, model, checkpoint: Checkpoint, config: dict) -> None:
    """The variant's row (replacing an earlier run's) and the finished run, in one transaction."""
    from disfer.models import register_model

    trained = type(model)(variant, checkpoint.path, model.device)   # the variant's adapter: its file, its id
    if trained.fingerprint != checkpoint.sha256:   # the fingerprint is the file's sha256, read back
        raise DisferError(f"{checkpoint.path}: changed while it was being registered; run again")
    summary = {"variant": variant, "best_epoch": config["best_epoch"],
               "best_val_accuracy": config["best_val_accuracy"], "seconds": config["seconds"],
               "weights_path": checkpoint.relative}
    with store.write() as con:
        # Relative to the store, so the store and its models/ folder can move together.
        register_model(con, trained, {**config, SHA256_KEY: checkpoint.sha256}, parent_id=model.model_id,
                       weights_path=checkpoint.relative)
        finish_run(con, run_id, "done", summary)


def _predict(store: Store, parent: str, variant: str, device: str, progress: ProgressFn | None) -> None:
    from disfer.models.predict import predict_store

    # The parent too (cached by its fingerprint), so the analyses can compare the two.
    predict_store(store, parent, device=device)
    predict_store(store, variant, device=device, progress=progress)


def variant_config(store: Store, variant: str) -> dict:
    """The full configuration a fine-tuned variant was registered with (protocol, split, curve)."""
    with store.read() as con:
        row = con.execute("SELECT config FROM models WHERE model_id = ? AND parent_id IS NOT NULL",
                          [variant]).fetchone()
    if row is None or row[0] is None:
        raise ConfigError(f"{variant!r} is not a fine-tuned variant in {store.path}")
    return json.loads(row[0])


def variant_summary(store: Store, variant: str) -> dict:
    """The figures a user checks after a run: best epoch, accuracies, sizes, weights, predictions."""
    config = variant_config(store, variant)
    with store.read() as con:
        weights_path, n = con.execute(
            "SELECT m.weights_path, (SELECT count(*) FROM predictions p WHERE p.model_id = m.model_id) "
            "FROM models m WHERE m.model_id = ?", [variant]).fetchone()
    return {"variant": variant, "parent": config["parent"], "protocol": config["protocol"],
            "distortion": config["distortion"], "targets": config["targets"], "epochs": config["epochs"],
            "best_epoch": config["best_epoch"], "best_val_accuracy": config["best_val_accuracy"],
            "parent_val_accuracy": config["parent_val_accuracy"],
            "worse_than_parent": config["best_val_accuracy"] < config["parent_val_accuracy"],
            "validation_note": validation_note(config), "evaluation_note": evaluation_note(config),
            "train_images": config["split"]["train_images"], "val_images": config["split"]["val_images"],
            "train_sources": len(config.get("train_sources", config["split"]["train_sources"])),
            "val_sources": len(config.get("val_sources", config["split"]["val_sources"])),
            "weights_path": weights_path, "predictions": int(n), "seconds": config["seconds"],
            "seconds_per_epoch": config.get("seconds_per_epoch")}


def plural(n: int, word: str) -> str:
    """'1 epoch', '2 epochs'."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def validation_note(config: dict) -> str | None:
    """The flag of a variant worse than its parent on validation, else None."""
    best, before = config["best_val_accuracy"], config["parent_val_accuracy"]
    if best < before:
        return f"worse than its parent on validation: {best:.3f} vs {before:.3f}"
    return None


def evaluation_note(config: dict) -> str:
    """What the study's stimuli are to this variant: a held-out test set, or partly its training set."""
    if config["protocol"] == "external":
        return "trained on faces outside the study: every study stimulus is held out"
    if config["protocol"] == "paper":
        return PAPER_NOTE
    return ("trained on the study's curated dataset: its evaluation on the study includes training "
            "images; compare on held-out faces")


def fine_tuned_variants(store: Store) -> list[str]:
    with store.read() as con:
        rows = con.execute("SELECT model_id FROM models WHERE parent_id IS NOT NULL AND config IS NOT NULL "
                           "ORDER BY created_at, model_id").fetchall()
    return [r[0] for r in rows]
