"""Inter-rater agreement from vote counts (items x categories), with a varying number of votes.

Per item i with n_i votes, n_ij of them for category j:
    P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))          (the share of agreeing rater pairs)
Fleiss' kappa with per-item n_i (items with n_i < 2 have no pairs and are left out):
    P_bar = mean_i P_i
    p_j   = sum_i n_ij / sum_i n_i                          (all votes pooled)
    P_e   = sum_j p_j^2
    kappa = (P_bar - P_e) / (1 - P_e)
With a constant n this is exactly Fleiss (1971) (statsmodels' `fleiss_kappa`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from disfer.analysis.trials import Study, as_study

PI_BINS = {"gt_0_9": (0.9, "gt"), "gt_0_5": (0.5, "gt"), "lt_0_3": (0.3, "lt")}


def pairwise_agreement(counts: np.ndarray) -> np.ndarray:
    """P_i per row of a count matrix; NaN where a row has fewer than two votes."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum(axis=1)
    pairs = n * (n - 1)
    agree = (counts * (counts - 1)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= 2, agree / pairs, np.nan)


def fleiss_kappa(counts) -> float:
    """Fleiss' kappa of a count matrix (or of a Study's / Store's human votes); formula above."""
    if not isinstance(counts, np.ndarray | list | tuple):
        counts = as_study(counts).counts
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum(axis=1)
    rated = counts[n >= 2]
    if not len(rated):
        return float("nan")
    p_bar = np.nanmean(pairwise_agreement(rated))
    p = rated.sum(axis=0) / rated.sum()
    p_e = float((p ** 2).sum())
    if p_e >= 1.0:
        return float("nan")  # every vote in one category: chance agreement is total
    return float((p_bar - p_e) / (1.0 - p_e))


def pi_bins(p_i: np.ndarray) -> dict[str, int]:
    """Counts of items with P_i > 0.9, P_i > 0.5 and P_i < 0.3 (the paper's bins; NaN left out)."""
    p_i = np.asarray(p_i, dtype=np.float64)
    ok = ~np.isnan(p_i)
    return {name: int(((p_i[ok] > t) if how == "gt" else (p_i[ok] < t)).sum())
            for name, (t, how) in PI_BINS.items()}


def agreement_per_stimulus(data) -> pd.DataFrame:
    """P_i for every stimulus of a Study (or Store / trial table) with its vote count."""
    study: Study = as_study(data)
    out = study.stimuli[["stimulus_id", "source_id", "distortion", "level", "label"]].copy()
    out["n_votes"] = study.counts.sum(axis=1)
    out["p_i"] = pairwise_agreement(study.counts)
    return out


@dataclass(frozen=True)
class Agreement:
    """Summary of agreement over a set of items."""

    fleiss_kappa: float
    mean_p_i: float
    bins: dict
    items: int

    def as_dict(self) -> dict:
        return {"fleiss_kappa": self.fleiss_kappa, "mean_p_i": self.mean_p_i,
                "pi_bins": self.bins, "items": self.items}


def agreement_summary(counts: np.ndarray) -> Agreement:
    p_i = pairwise_agreement(counts)
    mean = float(np.nanmean(p_i)) if np.isfinite(p_i).any() else float("nan")
    return Agreement(fleiss_kappa(np.asarray(counts)), mean, pi_bins(p_i), int(np.isfinite(p_i).sum()))
