"""The training loop: batches from the composer, one target scheme, the best epoch on validation.

The parent model's network is copied (the loaded parent stays untouched) and trained with Adam.
After every epoch the copy is scored on the held-out faces; the weights of the best epoch (highest
validation accuracy, lower validation loss on a tie) are what the run returns, as the paper did.
Epoch 0 in the curve is the parent itself, so the curve shows where training started.

Which layers train (`TrainConfig.train_layers`): `all`, or `head`, the layer that emits the
logits (the adapter's `head_module`) alone. Frozen layers keep every parameter and buffer as the
parent had them: the optimiser never sees their parameters, and their batch-norm layers stay in
eval mode, so their running statistics are not updated either.

Level mix (`TrainConfig.level_mix`) of the distorted half rendered on the fly: `uniform` (each of
the study's levels equally often, the default), `strongest` (level k drawn with weight k, so the
strongest level is half of the draws with 3 levels), or `range` (the parameter drawn uniformly
between the weakest and the strongest level's).

Reproducibility: every random choice (batches, drawn labels, on-the-fly distortions) comes from
NumPy generators seeded by (seed, epoch, purpose), and there is no dropout or random
initialisation, so on the CPU two runs with the same seed give bit-identical weights.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from disfer.data.distortions import DISTORTIONS, render
from disfer.errors import ConfigError
from disfer.finetune.sampling import BATCHES_PER_EPOCH, PER_CLASS, BatchComposer
from disfer.finetune.targets import (
    ItemLabels,
    check_scheme,
    correct,
    epoch_targets,
    eval_targets,
    target_loss,
)
from disfer.progress import Progress, ProgressFn

# Marks a training item whose distorted version is rendered on the fly (augmentation).
AUGMENT = "augment"
EVAL_BATCH = 256
TRAIN_LAYERS = ("all", "head")
LEVEL_MIXES = ("uniform", "strongest", "range")


@dataclass
class TrainData:
    """The images of one side of the split and what the loss needs about them.

    faces (N, 48, 48) uint8; kinds 'original' | 'distorted' per item; distortions the stored
    version's distortion, or AUGMENT where the loop renders a distortion of the face itself.
    """

    faces: np.ndarray
    kinds: np.ndarray
    distortions: np.ndarray
    labels: ItemLabels
    source_ids: np.ndarray
    stimulus_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.faces)


@dataclass(frozen=True)
class TrainConfig:
    scheme: str = "majority"
    epochs: int = 10
    lr: float = 1e-4
    batches: int = BATCHES_PER_EPOCH
    per_class: int = PER_CLASS
    seed: int = 0
    # Distortions the loop may render for AUGMENT items (a random one and level per draw).
    augment_with: tuple[str, ...] = ()
    # The parameter of each level per distortion of augment_with (the study's, as built); empty:
    # the registry's levels.
    augment_params: tuple[tuple[float, ...], ...] = ()
    level_mix: str = "uniform"
    train_layers: str = "all"


@dataclass
class TrainResult:
    state: dict[str, torch.Tensor]
    curve: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


EpochFn = Callable[[dict], None]


def _memory_format(device: torch.device) -> torch.memory_format:
    # The adapters run channels_last for inference; on the CPU (torch 2.13, oneDNN) the backward
    # pass of the channels_last mini-Xception segfaults, so CPU training uses the default layout.
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def _inputs(model, faces: np.ndarray) -> torch.Tensor:
    return model.preprocess(faces).contiguous(memory_format=_memory_format(model.device))


def _draw_param(levels: tuple[float, ...], mix: str, rng: np.random.Generator) -> tuple[int, float]:
    """(level, parameter) of one on-the-fly distortion under the level mix (module docstring)."""
    if mix == "range":
        return len(levels), float(rng.uniform(min(levels), max(levels)))
    if mix == "strongest":
        weights = np.arange(1, len(levels) + 1, dtype=float)
        level = int(rng.choice(len(levels), p=weights / weights.sum())) + 1
    else:   # uniform: the draw every earlier run made, so their seeds still give their weights
        level = int(rng.integers(1, len(levels) + 1))
    return level, levels[level - 1]


def _augment(faces: np.ndarray, distortions: np.ndarray, names: tuple[str, ...],
             rng: np.random.Generator, params: tuple[tuple[float, ...], ...] = (),
             mix: str = "uniform") -> np.ndarray:
    todo = np.flatnonzero(distortions == AUGMENT)
    if len(todo) == 0 or not names:
        return faces
    faces = faces.copy()
    for i in todo:
        k = int(rng.integers(len(names)))
        levels = params[k] if params else DISTORTIONS[names[k]].levels
        level, param = _draw_param(levels, mix, rng)
        faces[i] = render(faces[i], names[k], level, seed=int(rng.integers(2**62)), param=param)
    return faces


def check_train_layers(train_layers: str) -> str:
    if train_layers not in TRAIN_LAYERS:
        raise ConfigError(f"unknown layer choice {train_layers!r} (expected {' or '.join(TRAIN_LAYERS)})")
    return train_layers


def check_level_mix(level_mix: str) -> str:
    if level_mix not in LEVEL_MIXES:
        raise ConfigError(f"unknown level mix {level_mix!r} (expected {', '.join(LEVEL_MIXES)})")
    return level_mix


def freeze(model, network: torch.nn.Module, train_layers: str) -> list[torch.nn.Module]:
    """Freeze what `train_layers` leaves out of training; returns the frozen modules that hold
    parameters or buffers of their own (kept in eval mode while training, see `set_training`)."""
    if check_train_layers(train_layers) == "all":
        return []
    head = network.get_submodule(model.head_module)
    trained = {id(m) for m in head.modules()}
    frozen = []
    for module in network.modules():
        if id(module) in trained:
            continue
        for p in module.parameters(recurse=False):
            p.requires_grad_(False)
        if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
            frozen.append(module)
    return frozen


def set_training(network: torch.nn.Module, frozen: list[torch.nn.Module]) -> None:
    """Train mode, except the frozen layers: their batch norms must not update running statistics."""
    network.train()
    for module in frozen:
        module.eval()


def evaluate(model, network: torch.nn.Module, data: TrainData, scheme: str) -> tuple[float, float]:
    """(mean loss, accuracy) of `network` on `data` under `scheme`, in eval mode."""
    modes = [(m, m.training) for m in network.modules()]   # restored one by one: frozen layers stay in eval
    network.eval()
    losses, hits = [], []
    targets = torch.from_numpy(eval_targets(scheme, data.labels))
    with torch.no_grad():
        for start in range(0, len(data), EVAL_BATCH):
            sl = slice(start, start + EVAL_BATCH)
            logits = model.logits_to_canonical(network(_inputs(model, data.faces[sl])).float())
            t = targets[sl].to(logits.device)
            losses.append(float(target_loss(scheme, logits, t)) * len(t))
            pred = logits.argmax(dim=1).cpu().numpy()
            hits.append(correct(scheme, pred, data.labels.take(np.arange(len(data))[sl])))
    for module, mode in modes:
        module.train(mode)
    return sum(losses) / len(data), float(np.concatenate(hits).mean())


def train(model, train_data: TrainData, val_data: TrainData, config: TrainConfig,
          progress: ProgressFn | None = None, on_epoch: EpochFn | None = None) -> TrainResult:
    """Fine-tune a copy of `model.network`; returns the best epoch's weights and the curve."""
    check_scheme(config.scheme)
    torch.manual_seed(config.seed)
    composer = BatchComposer(train_data.labels.primary, train_data.kinds, seed=config.seed,
                             batches=config.batches, per_class=config.per_class)
    device = model.device
    check_level_mix(config.level_mix)
    network = copy.deepcopy(model.network).to(memory_format=_memory_format(device))
    frozen = freeze(model, network, config.train_layers)
    set_training(network, frozen)
    optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=config.lr)

    start = time.perf_counter()
    val_loss, val_acc = evaluate(model, network, val_data, config.scheme)
    curve = [{"epoch": 0, "train_loss": None, "train_accuracy": None, "val_loss": val_loss,
              "val_accuracy": val_acc, "seconds": 0.0,
              "val_seconds": time.perf_counter() - start}]
    if on_epoch:
        on_epoch(curve[-1])
    best = (-1.0, float("inf"))
    result = TrainResult(state={})
    total = config.epochs * config.batches
    with Progress(total, "fine-tuning", None, unit="batch") as bar:
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            targets = epoch_targets(config.scheme, train_data.labels,
                                    np.random.default_rng([config.seed, epoch, 1]))
            aug_rng = np.random.default_rng([config.seed, epoch, 2])
            sum_loss, n_seen, n_right = 0.0, 0, 0
            for b, batch in enumerate(composer.epoch(epoch)):
                faces = _augment(train_data.faces[batch], train_data.distortions[batch],
                                 config.augment_with, aug_rng, config.augment_params, config.level_mix)
                logits = model.logits_to_canonical(network(_inputs(model, faces)).float())
                loss = target_loss(config.scheme, logits,
                                   torch.from_numpy(targets[batch]).to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                sum_loss += float(loss.detach()) * len(batch)
                n_seen += len(batch)
                pred = logits.detach().argmax(dim=1).cpu().numpy()
                n_right += int(correct(config.scheme, pred, train_data.labels.take(batch)).sum())
                bar.update(1)
                if progress:
                    done = (epoch - 1) * config.batches + b + 1
                    progress(done / total, f"epoch {epoch}/{config.epochs}, batch {b + 1}/{config.batches}")
            seconds = time.perf_counter() - t0
            val_loss, val_acc = evaluate(model, network, val_data, config.scheme)
            row = {"epoch": epoch, "train_loss": sum_loss / n_seen, "train_accuracy": n_right / n_seen,
                   "val_loss": val_loss, "val_accuracy": val_acc, "seconds": seconds,
                   "val_seconds": time.perf_counter() - t0 - seconds}
            curve.append(row)
            if (val_acc, -val_loss) > (best[0], -best[1]):
                best = (val_acc, val_loss)
                result.best_epoch = epoch
                result.state = {k: v.detach().to("cpu", copy=True) for k, v in network.state_dict().items()}
            if on_epoch:
                on_epoch(row)
    result.curve = curve
    result.seconds = time.perf_counter() - start
    return result
