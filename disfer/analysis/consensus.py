"""A consensus label that weighs raters by their estimated reliability (Dawid-Skene), beside the
plain majority vote.

Two engines give the same result: crowd-kit's `DawidSkene` (the reference implementation; its
pandas group-bys take seconds at the paper's scale and minutes at FERPlus scale), and a numpy
transcription of the same EM (same start from the majority vote's proportions, same M-step
clipping, E-step in log2, and crowd-kit's evidence lower bound as the stopping rule), which the
tests check against crowd-kit and which is the default.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from disfer.analysis.humans import emotion_names, majority_arrays
from disfer.analysis.trials import as_study

_EPS = 1e-10  # crowd-kit's floor for probabilities before taking logs
ENGINES = ("numpy", "crowdkit")


def dawid_skene(task: np.ndarray, worker: np.ndarray, label: np.ndarray, n_iter: int = 100,
                tol: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Dawid-Skene EM on integer-coded votes; returns (task ids in order, probabilities (T, K)).

    Columns are the labels present in `label`, ascending (as crowd-kit); K = their number.
    An iteration is two products with the sparse (tasks x worker-answer) vote matrix: the E-step's
    and the M-step's. The stopping rule's evidence lower bound reuses both (see below), so it
    costs no third pass over the votes.
    """
    from scipy import sparse

    tasks, t = _compact(task)
    labels, k_of = _compact(label)
    _, w = _compact(worker)
    n_t, n_k = len(tasks), len(labels)
    if n_t == 0:
        return tasks, np.zeros((0, 0))
    n_w = int(w.max()) + 1
    task_rank, worker_rank = _near_order(t, w, n_t, n_w)
    t, w = task_rank[t], worker_rank[w]
    wk = w * n_k + k_of  # one column per (worker, answer)
    votes = sparse.csr_matrix((np.ones(len(t)), (t, wk)), shape=(n_t, n_w * n_k))
    votes_t = votes.T.tocsr()
    present = (np.bincount(wk, minlength=n_w * n_k) > 0).astype(np.float64)[:, None]
    absent = 1.0 - present
    n_per_task = np.bincount(t, minlength=n_t).astype(np.float64)

    def log2_errors(expected: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The M-step, in log2, into `out`. expected[w*K + k, c]: the answers k of worker w on
        tasks of true label c (votes_t @ probas); errors[w*K + k, c]: P(worker w answers k | true
        label c), normalized over k."""
        # crowd-kit clips the (worker, answer) pairs it has seen; unseen pairs stay 0
        errors = np.maximum(expected, _EPS, out=out)
        errors *= present
        cube = errors.reshape(n_w, n_k, n_k)
        cube /= cube.sum(axis=1, keepdims=True)
        # unseen pairs are never multiplied by a vote: log as 0 (they become 1, the others stay)
        errors += absent
        return np.log2(errors, out=errors)

    counts = np.bincount(t * n_k + k_of, minlength=n_t * n_k).reshape(n_t, n_k).astype(np.float64)
    probas = counts / counts.sum(axis=1, keepdims=True)
    priors = probas.mean(axis=0)
    # Arrays of votes' size are written in place, into buffers made once: fresh ones cost a page
    # fault per 4 KiB each iteration (a third of the EM's time at FERPlus scale).
    log_err = log2_errors(votes_t @ probas, np.empty((n_w * n_k, n_k)))
    scratch = np.empty((n_t, n_k))
    loss = -np.inf
    for _ in range(n_iter):
        ll = votes @ log_err
        ll += np.log2(np.maximum(priors, _EPS))
        ll -= ll.max(axis=1, keepdims=True)
        probas = np.exp2(ll, out=ll)
        probas /= probas.sum(axis=1, keepdims=True)
        priors = probas.mean(axis=0)
        expected = votes_t @ probas
        log_err = log2_errors(expected, log_err)  # the E-step above has read the old ones
        # crowd-kit's evidence lower bound (its log prior counted once per vote), per vote. Its
        # first term, sum over tasks of probas . (votes @ ln errors), is the same sum grouped by
        # (worker, answer): sum(ln errors * expected), with ln = log2 * ln 2 (the next E-step's logs).
        ln_prior = np.log(np.maximum(priors, _EPS))
        expected *= log_err
        joint = math.log(2) * float(expected.sum()) + float((n_per_task @ probas) @ ln_prior)
        np.maximum(probas, _EPS, out=probas)  # crowd-kit clips its probabilities here, in place
        np.log(probas, out=scratch)
        scratch *= probas
        entropy = -float(scratch.sum())
        new_loss = (joint + entropy) / len(t)
        if new_loss - loss < tol:
            break
        loss = new_loss
    return tasks, probas[task_rank]


def _near_order(t: np.ndarray, w: np.ndarray, n_t: int, n_w: int) -> tuple[np.ndarray, np.ndarray]:
    """(new number of each task, of each worker): tasks in the order of the first (lowest-numbered)
    worker who voted on them, workers in the order of the first task they voted on.

    The EM does not depend on the numbering, but its products gather rows by task and by worker:
    numbered so, the stimuli of one playlist and the participants who rated it come out together,
    and the gathers hit the cache (at FERPlus scale the E-step's product ran four times faster).
    """
    first_worker = np.full(n_t, n_w)
    np.minimum.at(first_worker, t, w)
    task_rank = np.empty(n_t, np.int64)
    task_rank[np.argsort(first_worker, kind="stable")] = np.arange(n_t)
    first_task = np.full(n_w, n_t)
    np.minimum.at(first_task, w, task_rank[t])
    worker_rank = np.empty(n_w, np.int64)
    worker_rank[np.argsort(first_task, kind="stable")] = np.arange(n_w)
    return task_rank, worker_rank


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
    out["majority"] = emotion_names(maj[voted]).tolist()
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
    out["dawid_skene"] = emotion_names(cols[best]).tolist()
    out["ds_confidence"] = proba[np.arange(len(best)), best]
    out["disagree"] = out["dawid_skene"] != out["majority"]
    return out
