"""Model measures: accuracy, Cohen's kappa against the labels, McNemar's test between raters.

Kappa with multi-label (curated) truth: the reference label of a stimulus is the prediction itself
when the prediction is one of the true labels, else the primary label, so kappa and accuracy agree
on what counts as right. With the original labels this is the plain Cohen's kappa.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Below this many discordant pairs McNemar uses the exact binomial test (the usual rule of thumb).
EXACT_BELOW = 25


def cohen_kappa(reference: np.ndarray, predicted: np.ndarray, k: int = 7) -> float:
    """Cohen's kappa of two integer label vectors over k categories (NaN when undefined)."""
    reference = np.asarray(reference, np.int64)
    predicted = np.asarray(predicted, np.int64)
    n = len(reference)
    if n == 0:
        return float("nan")
    table = np.bincount(reference * k + predicted, minlength=k * k).reshape(k, k)
    p_o = np.trace(table) / n
    p_e = float((table.sum(axis=1) * table.sum(axis=0)).sum()) / (n * n)
    if p_e >= 1.0:
        return float("nan")
    return float((p_o - p_e) / (1.0 - p_e))


def model_kappa(study, model: str) -> float:
    defined, correct = study.model_correct(model)
    pred = study.model_pred[study.models.index(model)].astype(np.int64)
    ref = np.where(correct, pred, study.label_index)[defined]
    return cohen_kappa(ref, pred[defined])


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired right/wrong outcomes.

    table: [[both right, only a right], [only b right, both wrong]]; exact: the binomial test was
    used (discordant pairs < EXACT_BELOW), else chi-square with continuity correction.
    """

    table: tuple[tuple[int, int], tuple[int, int]]
    statistic: float
    pvalue: float
    exact: bool
    n: int


def mcnemar_test(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """McNemar between two raters judged on the same items (boolean correctness vectors)."""
    a = np.asarray(correct_a, bool)
    b = np.asarray(correct_b, bool)
    table = ((int((a & b).sum()), int((a & ~b).sum())), (int((~a & b).sum()), int((~a & ~b).sum())))
    discordant = table[0][1] + table[1][0]
    if len(a) == 0:
        return McNemar(table, float("nan"), float("nan"), True, 0)
    exact = discordant < EXACT_BELOW
    statistic, pvalue = mcnemar_statistic(table[0][1], table[1][0], exact)
    return McNemar(table, statistic, pvalue, exact, len(a))


def mcnemar_statistic(only_a: int, only_b: int, exact: bool) -> tuple[float, float]:
    """(statistic, p-value) of McNemar's test from the discordant pairs (only a right, only b
    right), as statsmodels' `mcnemar(table, exact, correction=True)` computes them (the tests
    check it). exact: the statistic is the smaller count and p = 2 P(X <= it), X ~ Binomial(pairs,
    1/2), at most 1; else the chi-square statistic with continuity correction, 1 degree of freedom
    (needs at least one discordant pair).

    scipy.special has both distributions; scipy.stats, which statsmodels imports, costs over a
    second of every cold `disfer report`.
    """
    from scipy.special import bdtr, chdtrc  # heavy import, only when tested

    if exact:
        statistic = min(only_a, only_b)
        return float(statistic), float(min(1.0, 2.0 * bdtr(statistic, only_a + only_b, 0.5)))
    statistic = (abs(only_a - only_b) - 1) ** 2 / (only_a + only_b)
    return float(statistic), float(chdtrc(1, statistic))
