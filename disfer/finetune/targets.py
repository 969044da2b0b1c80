"""The four target schemes of the FERPlus study (Barsoum et al. 2016), as targets and losses.

Every scheme turns an item's labels into a (7,) target row in EMOTIONS order, so one batch is one
(N, 7) tensor whatever the scheme:

- majority: one-hot of the primary label (the paper protocol: the original label; the curated
  protocol: the curated primary label). Loss: cross-entropy.
- probability: one-hot of a label drawn from the item's vote distribution, drawn afresh each
  epoch. Loss: cross-entropy.
- soft: the vote distribution itself. Loss: cross-entropy against it, -sum_i p_i log q_i.
- multi_target: 1 for every curated label, 0 elsewhere. Loss: -log sum_{i in labels} q_i, so
  putting the probability on any curated label counts as right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError

SCHEMES: tuple[str, ...] = ("majority", "probability", "soft", "multi_target")
N_CLASSES = len(EMOTIONS)


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown target scheme {scheme!r} (expected one of {', '.join(SCHEMES)})")
    return scheme


@dataclass(frozen=True)
class ItemLabels:
    """What every scheme needs about N items, in EMOTIONS order.

    primary: (N,) class index; labels: (N, 7) bool, the accepted labels (primary included);
    distribution: (N, 7) float, rows summing to 1 (the human votes where there are any).
    """

    primary: np.ndarray
    labels: np.ndarray
    distribution: np.ndarray

    def __len__(self) -> int:
        return len(self.primary)

    def take(self, idx: np.ndarray) -> ItemLabels:
        return ItemLabels(self.primary[idx], self.labels[idx], self.distribution[idx])


def distribution_from(counts: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Rows of vote counts normalised to sum to 1; a row with no votes falls back to `weights`
    (the curated weights) where given, else to equal shares of its `labels`."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    fallback = (np.asarray(weights, dtype=np.float64) if weights is not None
                else np.asarray(labels, dtype=np.float64))
    fallback = fallback / np.maximum(fallback.sum(axis=1, keepdims=True), 1e-12)
    out = np.where(totals > 0, counts / np.maximum(totals, 1e-12), fallback)
    return out.astype(np.float32)


def single_label(primary: np.ndarray) -> ItemLabels:
    """Labels of items with one label each (the paper protocol)."""
    primary = np.asarray(primary, dtype=np.int64)
    onehot = np.eye(N_CLASSES, dtype=np.float32)[primary]
    return ItemLabels(primary, onehot.astype(bool), onehot)


def epoch_targets(scheme: str, items: ItemLabels, rng: np.random.Generator) -> np.ndarray:
    """(N, 7) float32 training targets for one epoch."""
    check_scheme(scheme)
    n = len(items)
    if scheme == "majority":
        return np.eye(N_CLASSES, dtype=np.float32)[items.primary]
    if scheme == "probability":
        # Inverse-CDF draw per row: one uniform number per item, reproducible from the rng.
        cdf = np.cumsum(items.distribution.astype(np.float64), axis=1)
        u = rng.random(n)[:, None] * cdf[:, -1:]
        drawn = np.minimum((u >= cdf).sum(axis=1), N_CLASSES - 1)
        return np.eye(N_CLASSES, dtype=np.float32)[drawn]
    if scheme == "soft":
        return items.distribution.astype(np.float32)
    return items.labels.astype(np.float32)


def eval_targets(scheme: str, items: ItemLabels) -> np.ndarray:
    """(N, 7) targets for validation: the expected target (the distribution for 'probability')."""
    if scheme == "probability":
        return items.distribution.astype(np.float32)
    return epoch_targets(scheme, items, np.random.default_rng(0))


def target_loss(scheme: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean loss of a batch: logits (N, 7) in EMOTIONS order, targets from `epoch_targets`."""
    log_q = torch.log_softmax(logits, dim=1)
    if scheme == "multi_target":
        # log sum_{i in labels} q_i, computed stably in log space; -inf where a label is absent.
        masked = log_q.masked_fill(targets <= 0, float("-inf"))
        return -torch.logsumexp(masked, dim=1).mean()
    return -(targets * log_q).sum(dim=1).mean()


def correct(scheme: str, predicted: np.ndarray, items: ItemLabels) -> np.ndarray:
    """Whether each prediction counts as right: in the curated labels for multi_target, the
    primary label otherwise."""
    predicted = np.asarray(predicted, dtype=np.int64)
    if scheme == "multi_target":
        return items.labels[np.arange(len(predicted)), predicted]
    return predicted == items.primary
