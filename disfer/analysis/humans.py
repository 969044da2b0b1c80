"""The human baseline: majority vote per stimulus and accuracy per participant.

Tie rule (deterministic, independent of the label): when several emotions share the most votes,
the majority is the first of them in the canonical order EMOTIONS (anger, disgust, fear,
happiness, neutral, sadness, surprise). Such stimuli are flagged `tied` and counted in reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from disfer.analysis.trials import as_study
from disfer.emotions import EMOTIONS

_NAMES = np.array([*EMOTIONS, None], dtype=object)  # index -1 (no emotion) is the last: None


def emotion_names(index: np.ndarray) -> np.ndarray:
    """The emotion of each index into EMOTIONS (object array), None where the index is -1."""
    return _NAMES[np.asarray(index, np.int64)]


def majority_from_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(majority index, tied) for a (N, K) count matrix; index -1 where a row has no votes.

    np.argmax returns the first maximum, which is exactly the tie rule above.
    """
    counts = np.asarray(counts)
    top = counts.max(axis=1) if counts.size else np.zeros(len(counts), counts.dtype)
    idx = counts.argmax(axis=1) if counts.size else np.zeros(len(counts), np.int64)
    empty = top == 0
    tied = ((counts == top[:, None]).sum(axis=1) > 1) & ~empty
    return np.where(empty, -1, idx), tied


def majority_arrays(study) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(majority index, tied, correct) per stimulus; correct is False where undefined."""
    maj, tied = majority_from_counts(study.counts)
    defined = (maj >= 0) & study.has_label
    correct = np.zeros(study.n_stimuli, bool)
    correct[defined] = study.truth[np.flatnonzero(defined), maj[defined]]
    return maj, tied, correct


def majority_vote(data) -> pd.DataFrame:
    """The human majority per stimulus (a Study, Store or trial table).

    Columns: stimulus_id, source_id, distortion, level, label, n_votes, majority,
    majority_share, label_share, tied, correct (NA where there are no votes or no label).
    """
    study = as_study(data)
    counts = study.counts
    maj, tied, correct = majority_arrays(study)
    n = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(maj >= 0, counts[np.arange(len(n)), np.maximum(maj, 0)] / n, np.nan)
        lab = study.label_index
        label_share = np.where((lab >= 0) & (n > 0), counts[np.arange(len(n)), np.maximum(lab, 0)] / n,
                               np.nan)
    out = study.stimuli.copy()
    out["n_votes"] = n
    out["majority"] = emotion_names(maj)
    out["majority_share"] = share
    out["label_share"] = label_share
    out["tied"] = tied
    flag = pd.array(correct, dtype="boolean")
    flag[(maj < 0) | ~study.has_label] = pd.NA
    out["correct"] = flag
    return out


@dataclass(frozen=True)
class ParticipantAccuracy:
    """Accuracy of each participant on labelled stimuli, with its summary."""

    table: pd.DataFrame  # participant_id, n, correct, accuracy
    mean: float
    min: float
    max: float
    median: float

    def summary(self) -> dict:
        return {"mean": self.mean, "min": self.min, "max": self.max, "median": self.median,
                "participants": len(self.table)}


def participant_accuracy(data) -> ParticipantAccuracy:
    """Per-participant accuracy against the study's labels (participants with no labelled vote left out)."""
    study = as_study(data)
    defined, correct = study.vote_correct()
    p = len(study.participants)
    n = np.bincount(study.vote_rater[defined], minlength=p)
    k = np.bincount(study.vote_rater[defined], weights=correct[defined], minlength=p)
    seen = n > 0
    acc = k[seen] / n[seen]
    table = pd.DataFrame({"participant_id": study.participants[seen], "n": n[seen],
                          "correct": k[seen].astype(np.int64), "accuracy": acc})
    if not len(acc):
        nan = float("nan")
        return ParticipantAccuracy(table, nan, nan, nan, nan)
    return ParticipantAccuracy(table, float(acc.mean()), float(acc.min()), float(acc.max()),
                               float(np.median(acc)))
