"""A consensus label that weighs raters by their estimated reliability (Dawid-Skene), beside the
plain majority vote.

Two engines give the same result: crowd-kit's `DawidSkene` (the reference implementation; its
pandas group-bys take seconds at the paper's scale and minutes at FERPlus scale), and a numpy
transcription of the same EM (same start from the majority vote's proportions, same M-step
clipping, E-step in log2, and crowd-kit's evidence lower bound as the stopping rule), which the
tests check against crowd-kit and which is the default.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from disfer.analysis.humans import majority_arrays
from disfer.analysis.trials import as_study
from disfer.emotions import EMOTIONS

_EPS = 1e-10  # crowd-kit's floor for probabilities before taking logs
ENGINES = ("numpy", "crowdkit")


def dawid_skene(task: np.ndarray, worker: np.ndarray, label: np.ndarray, n_iter: int = 100,
                tol: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Dawid-Skene EM on integer-coded votes; returns (task ids in order, probabilities (T, K)).

    Columns are the labels present in `label`, ascending (as crowd-kit); K = their number.
    """
    tasks, t = np.unique(task, return_inverse=True)
    labels, k_of = np.unique(label, return_inverse=True)
    _, w = np.unique(worker, return_inverse=True)
    n_t, n_k, n_w = len(tasks), len(labels), int(w.max()) + 1 if len(w) else 0
    if n_t == 0:
        return tasks, np.zeros((0, 0))
    wk = w * n_k + k_of
    present = np.bincount(wk, minlength=n_w * n_k) > 0

    def m_step(probas_t: np.ndarray) -> np.ndarray:
        # errors[c, w*K + k]: P(worker w answers k | true label c)
        errors = np.stack([np.bincount(wk, weights=probas_t[c][t], minlength=n_w * n_k) for c in range(n_k)])
        errors[:, present] = np.maximum(errors[:, present], _EPS)
        errors = errors.reshape(n_k, n_w, n_k)
        errors /= errors.sum(axis=2, keepdims=True)
        return errors.reshape(n_k, n_w * n_k)

    counts = np.bincount(t * n_k + k_of, minlength=n_t * n_k).reshape(n_t, n_k).astype(np.float64)
    probas_t = (counts / counts.sum(axis=1, keepdims=True)).T.copy()  # (K, T): columns contiguous
    priors = probas_t.mean(axis=1)
    errors = m_step(probas_t)
    loss = -np.inf
    n_votes = len(t)
    for _ in range(n_iter):
        log_prior = np.log2(np.maximum(priors, _EPS))
        with np.errstate(divide="ignore"):
            log_err = np.log2(errors)
        ll = np.stack([log_prior[c] + np.bincount(t, weights=log_err[c][wk], minlength=n_t)
                       for c in range(n_k)])
        ll -= ll.max(axis=0)
        probas_t = np.exp2(ll)
        probas_t /= probas_t.sum(axis=0)
        priors = probas_t.mean(axis=1)
        errors = m_step(probas_t)
        # crowd-kit's evidence lower bound (its log prior counted once per vote), per vote.
        ln_prior = np.log(np.maximum(priors, _EPS))
        with np.errstate(divide="ignore"):
            ln_err = np.log(errors)
        joint = sum(float((probas_t[c][t] * (ln_err[c][wk] + ln_prior[c])).sum()) for c in range(n_k))
        probas_t = np.maximum(probas_t, _EPS)  # crowd-kit clips its probabilities here, in place
        entropy = -float((np.log(probas_t) * probas_t).sum())
        new_loss = (joint + entropy) / n_votes
        if new_loss - loss < tol:
            break
        loss = new_loss
    return tasks, probas_t.T


def _crowdkit(task, worker, label, n_iter, tol):
    from crowdkit.aggregation import DawidSkene

    votes = pd.DataFrame({"task": task, "worker": worker, "label": label})
    proba = DawidSkene(n_iter=n_iter, tol=tol).fit_predict_proba(votes)
    proba = proba.sort_index().reindex(columns=sorted(proba.columns))
    return proba.index.to_numpy(), proba.to_numpy(np.float64), np.asarray(proba.columns)


def dawid_skene_labels(data, n_iter: int = 100, tol: float = 1e-5, engine: str = "numpy") -> pd.DataFrame:
    """Dawid-Skene label per voted stimulus, with its posterior probability and the majority.

    Columns: stimulus_id, source_id, distortion, level, label, majority, dawid_skene,
    ds_confidence, disagree (the two consensus labels differ). The EM is deterministic (it starts
    from the vote proportions), so no seed is needed. engine: 'numpy' (default) or 'crowdkit'.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (expected one of {', '.join(ENGINES)})")
    study = as_study(data)
    maj, _, _ = majority_arrays(study)
    voted = np.flatnonzero(maj >= 0)
    out = study.stimuli.iloc[voted][["stimulus_id", "source_id", "distortion", "level", "label"]]
    out = out.reset_index(drop=True)
    out["majority"] = [EMOTIONS[i] for i in maj[voted]]
    if not len(voted):
        return out.assign(dawid_skene=pd.Series(dtype=object), ds_confidence=pd.Series(dtype=float),
                          disagree=pd.Series(dtype=bool))
    task = study.vote_stim.astype(np.int64)
    worker = study.vote_rater.astype(np.int64)
    label = study.vote_choice.astype(np.int64)
    if engine == "crowdkit":
        tasks, proba, cols = _crowdkit(task, worker, label, n_iter, tol)
    else:
        tasks, proba = dawid_skene(task, worker, label, n_iter, tol)
        cols = np.unique(label)
    # tasks == voted (both ascending stimulus indices of the stimuli with votes)
    best = proba.argmax(axis=1)
    out["dawid_skene"] = [EMOTIONS[int(i)] for i in cols[best]]
    out["ds_confidence"] = proba[np.arange(len(best)), best]
    out["disagree"] = out["dawid_skene"] != out["majority"]
    return out
