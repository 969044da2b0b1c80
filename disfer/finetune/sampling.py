"""Which faces train and which validate, and how each epoch's batches are composed.

**Source-disjoint split.** Every version of a face (its original and all its distortions) goes to
the same side. Per emotion (the source's label: the original label in the paper protocol, the
curated primary label in the curated one), the sources are shuffled with the seed and the first
`val_fraction * n` of them, rounded (at least 1), are held out: all their versions are validation.
With the paper's study (12 faces per emotion), that is 1 face per emotion, 7 faces in all, so no
face (in any version) is both trained on and used to pick the best epoch.

**Batches (the paper's protocol).** An epoch is 27 batches of 42 images; each batch holds 6 images
of each of the 7 emotions, 3 originals and 3 distorted. Images are drawn per (emotion, kind) from a
stream of reshuffled passes over that group, so every training image is seen equally often before
any is seen again; the stream is seeded by (seed, epoch), so a run is reproducible image by image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError

BATCHES_PER_EPOCH = 27
PER_CLASS = 6
VAL_FRACTION = 0.1
ORIGINAL, DISTORTED = "original", "distorted"


@dataclass(frozen=True)
class Split:
    """Source ids on each side, sorted, and the held-out count per emotion."""

    train_sources: list[int]
    val_sources: list[int]
    val_per_class: dict[str, int]


def split_sources(source_labels: pd.DataFrame, seed: int = 0, val_fraction: float = VAL_FRACTION,
                  required: tuple[str, ...] = EMOTIONS) -> Split:
    """Hold out sources per emotion for validation (see the module docstring).

    `source_labels` has columns source_id, label (one row per source). Every emotion in
    `required` must have at least 2 sources (one to validate, one to train); emotions not
    required and with a single source train only.
    """
    if not 0 < val_fraction < 1:
        raise ConfigError(f"validation fraction must be in (0, 1), not {val_fraction}")
    df = source_labels.drop_duplicates("source_id").sort_values("source_id")
    rng = np.random.default_rng([seed, 0x5EED])
    train: list[int] = []
    val: list[int] = []
    held: dict[str, int] = {}
    for emotion in EMOTIONS:
        ids = df.loc[df["label"] == emotion, "source_id"].to_numpy(dtype=np.int64)
        if len(ids) < 2:
            if emotion in required:
                raise ConfigError(
                    f"too few faces for a source-disjoint split: {len(ids)} {emotion} face(s), need "
                    f"at least 2 (one to validate, one to train); build a larger study or curate more")
            train.extend(ids.tolist())
            continue
        n_val = min(max(1, math.floor(val_fraction * len(ids) + 0.5)), len(ids) - 1)
        order = rng.permutation(ids)
        val.extend(order[:n_val].tolist())
        train.extend(order[n_val:].tolist())
        held[emotion] = n_val
    return Split(sorted(int(i) for i in train), sorted(int(i) for i in val), held)


class BatchComposer:
    """Draws each epoch's batches, balanced over classes and (where both exist) over kinds.

    `classes` is the class index (0..6, EMOTIONS order) of each training item and `kinds` whether
    it is an original or a distorted version. A class with both kinds gives `per_class // 2`
    originals and the rest distorted to each batch; a class with one kind gives all from it. A
    class with no items is left out of the batches.
    """

    def __init__(self, classes: np.ndarray, kinds: np.ndarray, seed: int = 0,
                 batches: int = BATCHES_PER_EPOCH, per_class: int = PER_CLASS):
        if batches < 1 or per_class < 1:
            raise ConfigError(f"batches ({batches}) and images per class ({per_class}) must be >= 1")
        self.classes = np.asarray(classes, dtype=np.int64)
        self.kinds = np.asarray(kinds)
        if len(self.classes) == 0:
            raise ConfigError("no training images")
        self.seed = seed
        self.batches = batches
        self.per_class = per_class
        # (class, kind, item indices, images of that group per batch)
        self.groups: list[tuple[int, str, np.ndarray, int]] = []
        for c in range(len(EMOTIONS)):
            in_class = self.classes == c
            by_kind = {k: np.flatnonzero(in_class & (self.kinds == k)) for k in (ORIGINAL, DISTORTED)}
            present = [k for k in (ORIGINAL, DISTORTED) if len(by_kind[k])]
            if len(present) == 2:
                n_orig = per_class // 2   # one image per class: the distorted one
                if n_orig:
                    self.groups.append((c, ORIGINAL, by_kind[ORIGINAL], n_orig))
                self.groups.append((c, DISTORTED, by_kind[DISTORTED], per_class - n_orig))
            elif present:
                self.groups.append((c, present[0], by_kind[present[0]], per_class))

    @property
    def batch_size(self) -> int:
        return sum(g[3] for g in self.groups)

    def epoch(self, epoch: int) -> list[np.ndarray]:
        """The item indices of each batch of `epoch` (the same for the same seed and epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        per_group = []
        for _, _, items, n in self.groups:
            need = n * self.batches
            passes = -(-need // len(items))
            stream = np.concatenate([rng.permutation(items) for _ in range(passes)])[:need]
            per_group.append(stream.reshape(self.batches, n))
        out = []
        for b in range(self.batches):
            batch = np.concatenate([g[b] for g in per_group])
            out.append(rng.permutation(batch))
        return out
