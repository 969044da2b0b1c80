"""Error consistency (Geirhos et al. 2020, as in bethgelab/model-vs-human).

Two raters judged on the same trials, each right or wrong. With accuracies p_a and p_b, independent
raters would agree (both right or both wrong) with probability
    c_exp = p_a p_b + (1 - p_a)(1 - p_b);
the observed agreement c_obs is the share of trials where both are right or both are wrong, and
    kappa = (c_obs - c_exp) / (1 - c_exp).
kappa = 0: no more shared errors than the accuracies alone imply; 1: the same trials wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from disfer.analysis.humans import majority_arrays
from disfer.analysis.trials import as_study


@dataclass(frozen=True)
class ErrorConsistency:
    observed: float
    expected: float
    kappa: float
    n: int


def _kappa(c_obs, c_exp):
    # NaN where the accuracies alone force agreement (both raters always right, or always wrong).
    c_obs = np.asarray(c_obs, np.float64)
    c_exp = np.asarray(c_exp, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c_exp < 1.0, (c_obs - c_exp) / (1.0 - c_exp), np.nan)


def error_consistency(correct_a, correct_b) -> ErrorConsistency:
    """Error consistency of two boolean correctness vectors aligned trial by trial."""
    a = np.asarray(correct_a, bool)
    b = np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"trials do not align: {a.shape} vs {b.shape}")
    n = len(a)
    if n == 0:
        nan = float("nan")
        return ErrorConsistency(nan, nan, nan, 0)
    p_a, p_b = a.mean(), b.mean()
    c_obs = float((a == b).mean())
    c_exp = float(p_a * p_b + (1 - p_a) * (1 - p_b))
    return ErrorConsistency(c_obs, c_exp, float(_kappa(c_obs, c_exp)), n)


def model_vs_majority(data, model: str, mask: np.ndarray | None = None) -> ErrorConsistency:
    """A model against the human majority's correctness, stimulus by stimulus."""
    study = as_study(data)
    maj, _, maj_correct = majority_arrays(study)
    defined, correct = study.model_correct(model)
    both = defined & (maj >= 0)
    if mask is not None:
        both &= mask
    return error_consistency(correct[both], maj_correct[both])


def model_vs_participants(data, model: str) -> pd.DataFrame:
    """A model against each participant, on the stimuli that participant rated.

    Columns: participant_id, n, observed, expected, kappa.
    """
    return models_vs_participants(data, [model])[model]


def models_vs_participants(data, models: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """`model_vs_participants` for several models at once (default: every model of the study).

    The four counts per participant and model (trials, participant right, model right, both right)
    are one sparse product: (participants' labelled votes, then their right ones) x stimuli, times
    stimuli x (models' defined flags, then their right ones). So all models cost about as much as
    one pass over the votes.
    """
    from scipy import sparse

    study = as_study(data)
    models = list(study.models) if models is None else list(models)
    vdef, vcorrect = study.vote_correct()
    n_p, n_m = len(study.participants), len(models)
    rater, stim, right = study.vote_rater[vdef], study.vote_stim[vdef], vcorrect[vdef]
    # float32 counts are exact (integers far below 2**24) and halve the product's memory traffic.
    votes = sparse.csr_matrix((np.ones(len(rater) + int(right.sum()), np.float32),
                               (np.concatenate([rater, rater[right] + n_p]), np.concatenate([stim, stim[right]]))),
                              shape=(2 * n_p, study.n_stimuli))
    flags = np.empty((study.n_stimuli, 2 * n_m), np.float32)
    for j, model in enumerate(models):
        flags[:, j], flags[:, n_m + j] = study.model_correct(model)
    counts = (votes @ flags).astype(np.float64)
    n_all, sb_all = counts[:n_p, :n_m], counts[:n_p, n_m:]
    sa_all, sab_all = counts[n_p:, :n_m], counts[n_p:, n_m:]
    # Converted to pandas' strings once: per model, the (tens of thousands of) ids took longer
    # than the counts.
    ids = pd.Index(study.participants)
    out = {}
    for j, model in enumerate(models):
        n, sa, sb, sab = n_all[:, j], sa_all[:, j], sb_all[:, j], sab_all[:, j]
        seen = n > 0
        n, sa, sb, sab = n[seen], sa[seen], sb[seen], sab[seen]
        c_obs = (sab + (n - sa - sb + sab)) / n
        pa, pb = sa / n, sb / n
        c_exp = pa * pb + (1 - pa) * (1 - pb)
        out[model] = pd.DataFrame({"participant_id": ids[seen], "n": n.astype(np.int64),
                                   "observed": c_obs, "expected": c_exp, "kappa": _kappa(c_obs, c_exp)})
    return out
