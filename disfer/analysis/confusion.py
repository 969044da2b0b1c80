"""Confusion matrices (rows = true label, columns = response, canonical order) and per-emotion scores.

A rater is "humans" (every human vote pooled, as in the paper's human matrices), "majority" (the
human majority per stimulus), a model id, or a participant id. With multi-label truth the row of a
correct response is the response itself, else the primary label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from disfer.analysis.humans import majority_arrays
from disfer.analysis.trials import HUMANS, as_study
from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError

MAJORITY = "majority"


def confusion_counts(reference: np.ndarray, response: np.ndarray, k: int = 7) -> np.ndarray:
    """(k, k) int counts: rows reference, columns response."""
    reference = np.asarray(reference, np.int64)
    response = np.asarray(response, np.int64)
    return np.bincount(reference * k + response, minlength=k * k).reshape(k, k)


def row_normalize(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its total; rows without any trial are NaN."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / totals, np.nan)


def rater_responses(study, rater: str, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(reference, response) index vectors of one rater's labelled trials, restricted to stimuli in mask."""
    ref, resp, _ = rater_trials(study, rater, mask)
    return ref, resp


def rater_trials(study, rater: str, mask: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reference, response, stimulus index) of one rater's labelled trials in mask (all stimuli
    by default): the rater's choices, humans' votes, the majority's or a model's predictions."""
    if mask is None:
        mask = np.ones(study.n_stimuli, bool)
    if rater == HUMANS:
        stim, resp = study.vote_stim, study.vote_choice.astype(np.int64)
    elif rater == MAJORITY:
        maj, _, _ = majority_arrays(study)
        stim = np.flatnonzero(maj >= 0)
        resp = maj[stim]
    elif rater in study.models:
        pred = study.model_pred[study.models.index(rater)].astype(np.int64)
        stim = np.flatnonzero(pred >= 0)
        resp = pred[stim]
    else:
        where = np.flatnonzero(study.participants == rater)
        if not len(where):
            raise ConfigError(f"unknown rater {rater!r}: not 'humans', 'majority', a model or a participant")
        sel = study.vote_rater == where[0]
        stim, resp = study.vote_stim[sel], study.vote_choice[sel].astype(np.int64)
    keep = mask[stim] & study.has_label[stim]
    stim, resp = stim[keep], resp[keep]
    hit = study.truth[stim, resp]
    ref = np.where(hit, resp, study.label_index[stim])
    return ref, resp, stim


def condition_mask(study, distortion: str | None = None, level: int | None = None) -> np.ndarray:
    mask = np.ones(study.n_stimuli, bool)
    if distortion is not None:
        mask &= (study.stimuli["distortion"] == distortion).to_numpy()
    if level is not None:
        mask &= (study.stimuli["level"] == int(level)).to_numpy()
    return mask


def confusion_matrix(data, rater: str = HUMANS, distortion: str | None = None, level: int | None = None,
                     normalize: bool = True) -> pd.DataFrame:
    """7 x 7 confusion matrix of one rater (row-normalized unless normalize=False), optionally per condition."""
    study = as_study(data)
    ref, resp = rater_responses(study, rater, condition_mask(study, distortion, level))
    counts = confusion_counts(ref, resp)
    values = row_normalize(counts) if normalize else counts
    return pd.DataFrame(values, index=pd.Index(EMOTIONS, name="label"),
                        columns=pd.Index(EMOTIONS, name="predicted"))


def precision_recall_from_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) per class of a confusion count matrix (rows = label, columns = response):
    the diagonal over the column totals and over the row totals; NaN where a total is 0."""
    counts = np.asarray(counts, np.float64)
    tp = np.diag(counts)
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(actual > 0, tp / actual, np.nan)
    return precision, recall


def precision_recall(data, rater: str = HUMANS, distortion: str | None = None,
                     level: int | None = None) -> pd.DataFrame:
    """Per-emotion precision, recall and support of one rater (NaN where undefined)."""
    cm = confusion_matrix(data, rater, distortion, level, normalize=False).to_numpy(dtype=np.float64)
    precision, recall = precision_recall_from_counts(cm)
    return pd.DataFrame({"emotion": EMOTIONS, "precision": precision, "recall": recall,
                         "support": cm.sum(axis=1).astype(np.int64)})


def offdiag_pearson(a, b) -> float:
    """Pearson's r between two confusion matrices over their non-diagonal entries (the paper's
    error-correlation measure). Entries NaN in either matrix are left out; NaN if r is undefined."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    off = ~np.eye(a.shape[0], dtype=bool)
    x, y = a[off], b[off]
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def confusion_by_condition(study, rater: str) -> np.ndarray:
    """(C + 1, 7, 7) counts of one rater (as in rater_trials): one matrix per condition of
    `study.conditions`, then overall."""
    ref, resp, stim = rater_trials(study, rater)
    n_cond = len(study.conditions)
    cond = study.condition_index[stim]
    flat = np.bincount(cond * 49 + ref * 7 + resp, minlength=n_cond * 49).reshape(n_cond, 7, 7)
    return np.concatenate([flat, flat.sum(axis=0, keepdims=True)])
