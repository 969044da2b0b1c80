"""Bootstrap confidence intervals for accuracies, resampling sources (faces), not stimuli.

The versions of one face are not independent trials, so a replicate draws sources with
replacement and keeps all of each drawn source's trials. Every condition and rater shares the same
replicates (paired), and the whole computation is a matrix product per chunk of replicates.
"""

from __future__ import annotations

import contextlib

import numpy as np

CHUNK = 100  # replicates per matrix product; bounds memory at chunk x sources floats


def bootstrap_accuracy(source: np.ndarray, key: np.ndarray, correct: np.ndarray, n_sources: int,
                       n_keys: int, replicates: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI (low, high) of the accuracy of each key (a rater x condition cell).

    source, key, correct: one entry per trial (source index, key index, right or wrong).
    Keys without trials, or replicates=0, give NaN bounds.
    """
    low = np.full(n_keys, np.nan)
    high = np.full(n_keys, np.nan)
    if replicates <= 0 or n_sources == 0 or len(source) == 0:
        return low, high
    # Counted key by key (the trials come rater by rater, in stimulus order, so the counts are
    # written in order: as source x key, they were scattered over the whole table), then turned.
    cell = np.asarray(key, np.int64) * n_sources + np.asarray(source, np.int64)
    size = n_sources * n_keys
    right = np.bincount(cell, weights=np.asarray(correct, np.float64), minlength=size)
    right = right.reshape(n_keys, n_sources).T
    total = np.bincount(cell, minlength=size).astype(np.float64).reshape(n_keys, n_sources).T
    # Raters who judged the same stimuli share their `total` column: multiply each distinct one once.
    distinct, which = _distinct_columns(total)
    # float32 is exact here (integer sums far below 2**24) and halves the matrix product's cost.
    both = np.concatenate([right, distinct], axis=1).astype(np.float32)
    rng = np.random.default_rng(seed)
    acc = np.empty((replicates, n_keys), np.float64)
    with _one_blas_thread():
        _replicates(rng, both, acc, n_sources, which)
    alpha = (1.0 - level) / 2.0
    seen = total.sum(axis=0) > 0
    if seen.any():
        sub = acc[:, seen]
        quant = np.nanquantile if np.isnan(sub).any() else np.quantile
        q = quant(sub, [alpha, 1.0 - alpha], axis=0)
        low[seen], high[seen] = q[0], q[1]
    return low, high


def _distinct_columns(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct columns, index of each column's copy among them); np.unique(axis=1) sorts whole
    columns and took seconds at FERPlus scale, a random projection finds candidates at once."""
    proj = np.random.default_rng(12345).random(matrix.shape[0]) @ matrix
    reps: list[int] = []
    which = np.empty(matrix.shape[1], np.int64)
    by_hash: dict[float, list[int]] = {}
    for k in range(matrix.shape[1]):
        candidates = by_hash.setdefault(float(proj[k]), [])
        for idx in candidates:
            if np.array_equal(matrix[:, reps[idx]], matrix[:, k]):
                which[k] = idx
                break
        else:
            reps.append(k)
            candidates.append(len(reps) - 1)
            which[k] = len(reps) - 1
    return matrix[:, reps], which


def _one_blas_thread():
    # These products are small and many: with BLAS threads on a busy 2-core machine they ran 70x
    # slower than on one thread (threads spinning for cores that other processes hold).
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional (comes with scikit-learn); without it, BLAS's own default
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _replicates(rng, both, acc, n_sources, which) -> None:
    replicates, n_keys = acc.shape
    for start in range(0, replicates, CHUNK):
        b = min(CHUNK, replicates - start)
        draws = rng.integers(0, n_sources, size=(b, n_sources))
        # How often each source was drawn, replicate by replicate: one count table in the cache
        # at a time (one bincount over the whole chunk missed the cache on every draw).
        weights = np.empty((b, n_sources), np.float32)
        for i in range(b):
            weights[i] = np.bincount(draws[i], minlength=n_sources)
        sums = weights @ both
        with np.errstate(invalid="ignore", divide="ignore"):
            acc[start:start + b] = sums[:, :n_keys].astype(np.float64) / sums[:, n_keys:][:, which]
