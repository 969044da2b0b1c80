"""Fine-tuning FER models: the paper's per-distortion protocol and the curated protocol.

`finetune(store, "minixception", protocol="paper", distortion="gaussian_noise")` trains a copy of
the model on the study's stimuli (see `pools` for what each protocol trains on and `sampling` for
the source-disjoint split and the batches), keeps the best epoch on validation, writes its
weights into the store's own checkpoint folder (`checkpoints`: `<store dir>/models/<store_id>/`),
registers the variant in the `models` table (family = the parent's, parent_id set, config = the
full configuration, split, training curve and the weights' sha256) and runs it on every stimulus,
so the analyses compare it with its parent and with people. Every check on the configuration
happens before training starts.

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

from disfer.data.distortions import DISTORTIONS
from disfer.errors import ConfigError, DisferError
from disfer.finetune.checkpoints import SHA256_KEY, Checkpoint, write_checkpoint
from disfer.finetune.sampling import BATCHES_PER_EPOCH, PER_CLASS, VAL_FRACTION
from disfer.finetune.targets import check_scheme
from disfer.finetune.train import TrainConfig, train
from disfer.outfiles import safe_name
from disfer.progress import ProgressFn
from disfer.runs import finish_run, start_run
from disfer.store import Store

PROTOCOLS = ("paper", "curated")
DEFAULT_EPOCHS = 10
DEFAULT_LR = 1e-4


def variant_id(model_id: str, protocol: str, distortion: str | None, targets: str | None,
               augment: bool = False, seed: int = 0) -> str:
    """`<parent>-ft-<distortion>` (paper) or `<parent>-ft-curated-<targets>[-<distortion>]`,
    then `-aug` with augmentation and `-s<seed>` for a seed other than 0."""
    if protocol == "paper":
        name = f"{model_id}-ft-{distortion}"
    else:
        name = f"{model_id}-ft-curated-{targets}" + (f"-{distortion}" if distortion else "")
    return name + ("-aug" if augment else "") + (f"-s{seed}" if seed else "")


def weights_file(store: Store, variant: str) -> Path:
    """The weights file `variant` is registered with in `store` (its path in the models row)."""
    with store.read() as con:
        row = con.execute("SELECT weights_path FROM models WHERE model_id = ?", [variant]).fetchone()
    if row is None or row[0] is None:
        raise ConfigError(f"{variant!r} has no weights file registered in {store.path}")
    path = Path(row[0])
    return path if path.is_absolute() else Path(store.path).parent / path


def _check(protocol, distortion, targets, epochs, lr, batches, per_class) -> tuple[str | None, str]:
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
    else:
        targets = check_scheme(targets or "majority")
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, not {epochs}")
    if not lr > 0:
        raise ConfigError(f"learning rate must be positive, not {lr}")
    if batches < 1 or per_class < 1:
        raise ConfigError("batches per epoch and images per emotion must be at least 1")
    return distortion, targets


def finetune(store: Store, model_id: str, protocol: str = "paper", distortion: str | None = None,
             targets: str | None = None, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
             device: str = "auto", augment: bool = False, progress: ProgressFn | None = None,
             on_epoch: Callable[[dict], None] | None = None, lr: float = DEFAULT_LR,
             batches: int = BATCHES_PER_EPOCH, per_class: int = PER_CLASS,
             val_fraction: float = VAL_FRACTION, predict: bool = True) -> str:
    """Fine-tune `model_id`, register the variant, predict every stimulus; returns the variant id.

    `on_epoch(row)` receives each training-curve row (epoch, train/val loss and accuracy) as it
    is made, for a live chart. `progress(fraction, text)` follows the batches.
    """
    from disfer.models import load_model

    distortion, targets = _check(protocol, distortion, targets, epochs, lr, batches, per_class)
    model = load_model(model_id, device=device, store=store)   # unknown model, missing GPU
    pool = _pool(store, protocol, distortion, seed, val_fraction, augment)
    model.load()   # weights present and readable, before any training
    variant = safe_name(variant_id(model_id, protocol, distortion, targets if protocol == "curated" else None,
                                   augment, seed), "variant name")   # it names the weights file
    config = TrainConfig(scheme=targets, epochs=epochs, lr=lr, batches=batches, per_class=per_class,
                         seed=seed, augment_with=_augment_with(distortion) if augment else ())
    settings = _settings(model, protocol, distortion, augment, config, val_fraction)
    with _tracked_run(store, {**settings, "variant": variant}) as run_id:
        result = _train(model, pool, config, progress, on_epoch)
        checkpoint = write_checkpoint(store, variant, model.network.state_dict())
        _register(store, run_id, variant, model, checkpoint, _full_config(settings, pool, result))
    if predict:
        _predict(store, model_id, variant, device, progress)
    return variant


def _pool(store: Store, protocol: str, distortion: str | None, seed: int, val_fraction: float,
          augment: bool):
    """The train/validation pool of the protocol (see `pools`)."""
    from disfer.finetune.pools import curated_pool, paper_pool

    if protocol == "paper":
        return paper_pool(store, distortion, seed=seed, val_fraction=val_fraction, augment=augment)
    from disfer.ledger import current_ground_truth

    return curated_pool(store, current_ground_truth(store), distortion, seed=seed,
                        val_fraction=val_fraction, augment=augment)


def _augment_with(distortion: str | None) -> tuple[str, ...]:
    """The distortions augmentation draws from: the one trained on, or all of them."""
    return (distortion,) if distortion else tuple(d for d in DISTORTIONS if d != "original")


def _settings(model, protocol: str, distortion: str | None, augment: bool, config: TrainConfig,
              val_fraction: float) -> dict:
    """The run's configuration as recorded in `runs` (and, completed, in `models`)."""
    return {
        "protocol": protocol, "parent": model.model_id, "distortion": distortion, "targets": config.scheme,
        "augment": augment, "augment_with": list(config.augment_with),
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
    paper = settings["protocol"] == "paper"
    batch_size = 7 * settings["images_per_emotion_per_batch"] if paper else None
    return {**settings, "batch_size": batch_size, "split": pool.summary, "curve": result.curve,
            "best_epoch": result.best_epoch, "best_val_accuracy": best["val_accuracy"],
            "parent_val_accuracy": result.curve[0]["val_accuracy"], "seconds": round(result.seconds, 3)}


@contextmanager
def _tracked_run(store: Store, config: dict) -> Iterator[int]:
    """A 'finetune' row in `runs` for the block; marked failed if the block raises."""
    with store.write() as con:
        run_id = start_run(con, "finetune", config)
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
            "distortion": config["distortion"], "targets": config["targets"],
            "best_epoch": config["best_epoch"], "best_val_accuracy": config["best_val_accuracy"],
            "parent_val_accuracy": config["parent_val_accuracy"],
            "train_images": config["split"]["train_images"], "val_images": config["split"]["val_images"],
            "weights_path": weights_path, "predictions": int(n), "seconds": config["seconds"]}


def fine_tuned_variants(store: Store) -> list[str]:
    with store.read() as con:
        rows = con.execute("SELECT model_id FROM models WHERE parent_id IS NOT NULL AND config IS NOT NULL "
                           "ORDER BY created_at, model_id").fetchall()
    return [r[0] for r in rows]
