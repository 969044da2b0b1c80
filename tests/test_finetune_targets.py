"""The four FERPlus target schemes against numbers worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from disfer.errors import ConfigError
from disfer.finetune.targets import (
    ItemLabels,
    check_scheme,
    correct,
    distribution_from,
    epoch_targets,
    eval_targets,
    target_loss,
)

# Logits whose softmax is q = (0.5, 0.25, 0.125, 0.125, 0, 0, 0) up to the zeros: exp(log q).
Q = np.array([0.5, 0.25, 0.125, 0.125 - 3e-6, 1e-6, 1e-6, 1e-6])
LOGITS = torch.tensor(np.log(Q), dtype=torch.float64)[None]


def item(primary: int, labels: list[int], dist: list[float]) -> ItemLabels:
    mask = np.zeros((1, 7), dtype=bool)
    mask[0, labels] = True
    return ItemLabels(np.array([primary]), mask, np.array([dist], dtype=np.float32))


ONE = item(0, [0, 1], [0.6, 0.4, 0, 0, 0, 0, 0])


def loss(scheme: str, it: ItemLabels = ONE, rng=None) -> float:
    t = epoch_targets(scheme, it, rng or np.random.default_rng(0))
    return float(target_loss(scheme, LOGITS, torch.tensor(t, dtype=torch.float64)))


def test_majority_is_cross_entropy_on_the_primary_label():
    assert loss("majority") == pytest.approx(-math.log(0.5), rel=1e-6)


def test_soft_is_cross_entropy_against_the_vote_distribution():
    # -(0.6 log 0.5 + 0.4 log 0.25) = 0.6 ln 2 + 0.8 ln 2 = 1.4 ln 2
    assert loss("soft") == pytest.approx(1.4 * math.log(2), rel=1e-6)


def test_multi_target_counts_any_curated_label_as_right():
    # -log(0.5 + 0.25) = ln(4/3)
    assert loss("multi_target") == pytest.approx(math.log(4 / 3), rel=1e-5)
    # lower than putting the same mass on the primary alone: the second label helps.
    assert loss("multi_target") < loss("majority")


def test_probability_draws_labels_in_proportion_to_votes():
    many = ItemLabels(np.zeros(20000, dtype=np.int64), np.zeros((20000, 7), dtype=bool),
                      np.tile(np.array([[0.6, 0.4, 0, 0, 0, 0, 0]], dtype=np.float32), (20000, 1)))
    drawn = epoch_targets("probability", many, np.random.default_rng(1)).argmax(axis=1)
    assert set(np.unique(drawn)) == {0, 1}
    assert (drawn == 0).mean() == pytest.approx(0.6, abs=0.015)
    # each epoch draws afresh, reproducibly for the same generator state
    again = epoch_targets("probability", many, np.random.default_rng(1)).argmax(axis=1)
    other = epoch_targets("probability", many, np.random.default_rng(2)).argmax(axis=1)
    assert np.array_equal(drawn, again) and not np.array_equal(drawn, other)
    # the loss of one drawn target is the cross-entropy of the drawn label
    assert loss("probability") in (pytest.approx(math.log(2), rel=1e-6), pytest.approx(math.log(4), rel=1e-6))
    # validation uses the expected target, the distribution
    assert np.allclose(eval_targets("probability", ONE), ONE.distribution)


def test_distribution_from_votes_with_fallbacks():
    counts = np.array([[3, 1, 0, 0, 0, 0, 0], [0] * 7, [0] * 7])
    labels = np.array([[1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0, 0]], dtype=bool)
    weights = np.array([[1, 0, 0, 0, 0, 0, 0], [0, 0, 0.5, 0.5, 0, 0, 0], [0, 0, 0.8, 0.2, 0, 0, 0]])
    d = distribution_from(counts, labels)
    assert d[0].tolist()[:2] == [0.75, 0.25] and d[1].tolist()[2:4] == [0.5, 0.5]
    dw = distribution_from(counts, labels, weights)
    assert dw[2].tolist()[2:4] == pytest.approx([0.8, 0.2])


def test_correct_per_scheme():
    assert correct("majority", np.array([1]), ONE).tolist() == [False]
    assert correct("multi_target", np.array([1]), ONE).tolist() == [True]
    assert correct("multi_target", np.array([2]), ONE).tolist() == [False]


def test_unknown_scheme():
    with pytest.raises(ConfigError, match="unknown target scheme 'hard'"):
        check_scheme("hard")
