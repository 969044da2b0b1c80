"""Fine-tuning FER models: the paper's per-distortion protocol and the curated protocol.

`finetune(store, "minixception", protocol="paper", distortion="gaussian_noise")` trains a copy of
the model on the study's stimuli (see `pools` for what each protocol trains on and `sampling` for
the source-disjoint split and the batches), keeps the best epoch on validation, writes its
weights as `<store dir>/models/<variant>.safetensors`, registers the variant in the `models`
table (family = the parent's, parent_id set, config = the full configuration, split and training
curve) and runs it on every stimulus, so the analyses compare it with its parent and with people.
Every check on the configuration happens before training starts.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path

import torch

from disfer.data.distortions import DISTORTIONS
from disfer.errors import ConfigError, DisferError
from disfer.finetune.sampling import BATCHES_PER_EPOCH, PER_CLASS, VAL_FRACTION
from disfer.finetune.targets import check_scheme
from disfer.finetune.train import TrainConfig, train
from disfer.progress import ProgressFn
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
    return Path(store.path).parent / "models" / f"{variant}.safetensors"


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
    from disfer.finetune.pools import curated_pool, paper_pool
    from disfer.models import load_model
    from disfer.models import weights as W

    distortion, targets = _check(protocol, distortion, targets, epochs, lr, batches, per_class)
    model = load_model(model_id, device=device, store=store)   # unknown model, missing GPU
    if protocol == "paper":
        pool = paper_pool(store, distortion, seed=seed, val_fraction=val_fraction, augment=augment)
    else:
        from disfer.ledger import current_ground_truth

        pool = curated_pool(store, current_ground_truth(store), distortion, seed=seed,
                            val_fraction=val_fraction, augment=augment)
    _ = model.network   # weights present and readable, before any training
    variant = variant_id(model_id, protocol, distortion, targets if protocol == "curated" else None,
                         augment, seed)
    augment_with = ((distortion,) if distortion else tuple(d for d in DISTORTIONS if d != "original")
                    ) if augment else ()
    config = TrainConfig(scheme=targets, epochs=epochs, lr=lr, batches=batches, per_class=per_class,
                         seed=seed, augment_with=augment_with)
    settings = {
        "protocol": protocol, "parent": model_id, "distortion": distortion, "targets": targets,
        "augment": augment, "augment_with": list(augment_with), "epochs": epochs, "seed": seed,
        "lr": lr, "optimizer": "Adam", "batches_per_epoch": batches,
        "images_per_emotion_per_batch": per_class, "batch_size": None, "val_fraction": val_fraction,
        "device": str(model.device), "torch": torch.__version__, "python": platform.python_version(),
    }
    run_id = _start_run(store, {**settings, "variant": variant})
    try:
        result = train(model, pool.train, pool.val, config, progress=progress, on_epoch=on_epoch)
        network = model.network
        network.load_state_dict(result.state)   # the parent object is ours alone; reuse its network
        path = W.save_safetensors(network, weights_file(store, variant))
        fingerprint = W.fingerprint(path)
        best = result.curve[result.best_epoch]
        settings["batch_size"] = 7 * per_class if protocol == "paper" else None
        full = {**settings, "split": pool.summary, "curve": result.curve, "best_epoch": result.best_epoch,
                "best_val_accuracy": best["val_accuracy"], "parent_val_accuracy": result.curve[0]["val_accuracy"],
                "seconds": round(result.seconds, 3)}
        _register(store, run_id, variant, model, fingerprint, full, path)
    except BaseException as err:
        _fail_run(store, run_id, err)
        raise
    if predict:
        from disfer.models.predict import predict_store

        # The parent too (cached by its fingerprint), so the analyses can compare the two.
        predict_store(store, model_id, device=device)
        predict_store(store, variant, device=device, progress=progress)
    return variant


def _start_run(store: Store, config: dict) -> int:
    with store.write() as con:
        return int(con.execute("INSERT INTO runs (kind, config) VALUES ('finetune', ?) RETURNING run_id",
                               [json.dumps(config)]).fetchone()[0])


def _fail_run(store: Store, run_id: int, err: BaseException) -> None:
    try:
        with store.write() as con:
            con.execute("UPDATE runs SET status = 'failed', finished_at = current_timestamp, result = ? "
                        "WHERE run_id = ?", [json.dumps({"error": str(err)[:500]}), run_id])
    except DisferError:
        pass


def _register(store: Store, run_id: int, variant: str, model, fingerprint: str, config: dict,
              path: Path) -> None:
    """The variant's row (replacing an earlier run's) and the finished run, in one transaction."""
    rel = str(path.relative_to(Path(store.path).parent))
    summary = {"variant": variant, "best_epoch": config["best_epoch"],
               "best_val_accuracy": config["best_val_accuracy"], "seconds": config["seconds"]}
    with store.write() as con:
        con.execute(
            "INSERT INTO models (model_id, family, parent_id, fingerprint, config, weights_path) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_id) DO UPDATE SET family = excluded.family, "
            "parent_id = excluded.parent_id, fingerprint = excluded.fingerprint, "
            "config = excluded.config, weights_path = excluded.weights_path",
            [variant, model.family, model.model_id, fingerprint, json.dumps(config), rel])
        con.execute("UPDATE runs SET status = 'done', finished_at = current_timestamp, result = ? "
                    "WHERE run_id = ?", [json.dumps(summary), run_id])


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
