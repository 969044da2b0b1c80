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
    Every step is a product with one sparse (tasks x worker-answer) vote matrix, so an
    iteration costs a few passes over the votes.
    """
    from scipy import sparse

    tasks, t = _compact(task)
    labels, k_of = _compact(label)
    _, w = _compact(worker)
    n_t, n_k = len(tasks), len(labels)
    if n_t == 0:
        return tasks, np.zeros((0, 0))
    n_w = int(w.max()) + 1
    wk = w * n_k + k_of  # one column per (worker, answer)
    votes = sparse.csr_matrix((np.ones(len(t)), (t, wk)), shape=(n_t, n_w * n_k))
    votes_t = votes.T.tocsr()
    present = (np.asarray(votes.sum(axis=0)).ravel() > 0).astype(np.float64)[:, None]
    n_per_task = np.asarray(votes.sum(axis=1)).ravel()

    def m_step(probas: np.ndarray) -> np.ndarray:
        # errors[w*K + k, c]: P(worker w answers k | true label c), normalized over k
        errors = votes_t @ probas
        # crowd-kit clips the (worker, answer) pairs it has seen; unseen pairs stay 0
        errors = np.maximum(errors, _EPS) * present
        errors = errors.reshape(n_w, n_k, n_k)
        errors /= errors.sum(axis=1, keepdims=True)
        return errors.reshape(n_w * n_k, n_k)

    counts = np.bincount(t * n_k + k_of, minlength=n_t * n_k).reshape(n_t, n_k).astype(np.float64)
    probas = counts / counts.sum(axis=1, keepdims=True)
    priors = probas.mean(axis=0)
    errors = m_step(probas)
    loss = -np.inf
    for _ in range(n_iter):
        seen = errors > 0  # unseen (worker, answer) pairs are never multiplied by a vote: log as 0
        log_err = np.log2(errors, out=np.zeros_like(errors), where=seen)
        ll = votes @ log_err + np.log2(np.maximum(priors, _EPS))
        ll -= ll.max(axis=1, keepdims=True)
        probas = np.exp2(ll)
        probas /= probas.sum(axis=1, keepdims=True)
        priors = probas.mean(axis=0)
        errors = m_step(probas)
        # crowd-kit's evidence lower bound (its log prior counted once per vote), per vote.
        ln_err = np.log(errors, out=np.zeros_like(errors), where=errors > 0)
        ln_prior = np.log(np.maximum(priors, _EPS))
        joint = float((probas * (votes @ ln_err)).sum() + (n_per_task @ probas) @ ln_prior)
        probas = np.maximum(probas, _EPS)  # crowd-kit clips its probabilities here, in place
        entropy = -float((np.log(probas) * probas).sum())
        new_loss = (joint + entropy) / len(t)
        if new_loss - loss < tol:
            break
        loss = new_loss
    return tasks, probas


def _compact(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, code of each value): np.unique's result, by counting when the
    values are small non-negative integers (three np.unique sorts of the votes took a second)."""
    values = np.asarray(values, np.int64)
    if len(values) and values.min() >= 0 and values.max() < 4 * len(values) + 1024:
        seen = np.bincount(values) > 0
        return np.flatnonzero(seen), (np.cumsum(seen) - 1)[values]
    return np.unique(values, return_inverse=True)


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
