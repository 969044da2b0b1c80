"""The source-disjoint split and the paper's batch composition (27 x 42, balanced, half distorted)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.finetune.sampling import DISTORTED, ORIGINAL, BatchComposer, split_sources


def paper_sources(per_class: int = 12) -> pd.DataFrame:
    rows = [(i * 7 + c, e) for c, e in enumerate(EMOTIONS) for i in range(per_class)]
    return pd.DataFrame(rows, columns=["source_id", "label"])


def paper_pool(per_class: int = 12, levels: int = 3) -> pd.DataFrame:
    """Every version of every source, as the paper protocol's pool for one distortion."""
    src = paper_sources(per_class)
    rows = []
    for sid, label in src.itertuples(index=False):
        rows.append((sid, label, ORIGINAL))
        rows += [(sid, label, DISTORTED)] * levels
    return pd.DataFrame(rows, columns=["source_id", "label", "kind"])


def test_split_holds_out_whole_sources_per_emotion():
    src = paper_sources(12)
    split = split_sources(src, seed=3)
    assert set(split.train_sources).isdisjoint(split.val_sources)
    assert sorted(split.train_sources + split.val_sources) == sorted(src["source_id"])
    # 10 % of 12 faces per emotion rounds to 1 held-out face per emotion.
    assert split.val_per_class == {e: 1 for e in EMOTIONS}
    val_labels = src.set_index("source_id").loc[split.val_sources, "label"]
    assert sorted(val_labels) == sorted(EMOTIONS)


def test_split_is_seeded():
    src = paper_sources(12)
    assert split_sources(src, seed=1) == split_sources(src, seed=1)
    assert any(split_sources(src, seed=1).val_sources != split_sources(src, seed=s).val_sources
               for s in range(2, 6))


def test_split_refuses_an_emotion_with_one_face():
    src = paper_sources(12)
    src = src[~((src["label"] == "disgust") & (src["source_id"] > 1))]
    with pytest.raises(ConfigError, match="1 disgust face"):
        split_sources(src)
    # Not required (curated protocol, emotion absent from the curated labels): trains only.
    split = split_sources(src, required=("anger",))
    assert 1 in split.train_sources


def test_paper_batches_are_27_of_42_balanced_and_half_distorted():
    pool = paper_pool(12)
    classes = pool["label"].map(EMOTIONS.index).to_numpy()
    composer = BatchComposer(classes, pool["kind"].to_numpy(), seed=0)
    batches = composer.epoch(0)
    assert len(batches) == 27 and composer.batch_size == 42
    for batch in batches:
        assert len(batch) == 42
        assert np.bincount(classes[batch], minlength=7).tolist() == [6] * 7
        kinds = pool["kind"].to_numpy()[batch]
        assert (kinds == ORIGINAL).sum() == 21
        for c in range(7):
            in_c = classes[batch] == c
            assert (kinds[in_c] == ORIGINAL).sum() == 3


def test_every_training_image_is_used_evenly():
    pool = paper_pool(12)
    classes = pool["label"].map(EMOTIONS.index).to_numpy()
    batches = BatchComposer(classes, pool["kind"].to_numpy(), seed=0).epoch(0)
    counts = np.bincount(np.concatenate(batches), minlength=len(pool))
    originals = counts[pool["kind"].to_numpy() == ORIGINAL]
    distorted = counts[pool["kind"].to_numpy() == DISTORTED]
    # 81 originals per emotion over 12 faces: each face drawn 6 or 7 times, never 5 or 8.
    assert originals.min() >= 81 // 12 and originals.max() <= -(-81 // 12)
    assert distorted.min() >= 81 // 36 and distorted.max() <= -(-81 // 36)


def test_batches_are_deterministic_per_seed_and_epoch():
    pool = paper_pool(4)
    classes = pool["label"].map(EMOTIONS.index).to_numpy()
    a = BatchComposer(classes, pool["kind"].to_numpy(), seed=5)
    b = BatchComposer(classes, pool["kind"].to_numpy(), seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a.epoch(2), b.epoch(2), strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a.epoch(2), a.epoch(3), strict=True))


def test_a_class_without_distorted_images_fills_its_share_with_originals():
    classes = np.array([0, 0, 1, 1, 1])
    kinds = np.array([ORIGINAL, DISTORTED, ORIGINAL, ORIGINAL, ORIGINAL])
    composer = BatchComposer(classes, kinds, seed=0, batches=3, per_class=4)
    for batch in composer.epoch(0):
        assert np.bincount(classes[batch], minlength=7)[:2].tolist() == [4, 4]
        assert kinds[batch][classes[batch] == 0].tolist().count(DISTORTED) == 2
