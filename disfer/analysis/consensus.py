"""A consensus label that weighs raters by their estimated reliability (Dawid-Skene, via crowd-kit),
beside the plain majority vote."""

from __future__ import annotations

import numpy as np
import pandas as pd

from disfer.analysis.humans import majority_arrays
from disfer.analysis.trials import as_study
from disfer.emotions import EMOTIONS


def dawid_skene_labels(data, n_iter: int = 100, tol: float = 1e-5) -> pd.DataFrame:
    """Dawid-Skene label per voted stimulus, with its posterior probability and the majority.

    Columns: stimulus_id, source_id, distortion, level, label, majority, dawid_skene,
    ds_confidence, disagree (the two consensus labels differ). EM is deterministic (it starts
    from the majority vote), so no seed is needed.
    """
    from crowdkit.aggregation import DawidSkene

    study = as_study(data)
    maj, _, _ = majority_arrays(study)
    voted = np.flatnonzero(maj >= 0)
    out = study.stimuli.iloc[voted][["stimulus_id", "source_id", "distortion", "level", "label"]]
    out = out.reset_index(drop=True)
    out["majority"] = [EMOTIONS[i] for i in maj[voted]]
    if not len(voted):
        return out.assign(dawid_skene=pd.Series(dtype=object), ds_confidence=pd.Series(dtype=float),
                          disagree=pd.Series(dtype=bool))
    # Integer tasks, workers and labels keep crowd-kit's pandas group-bys cheap.
    votes = pd.DataFrame({"task": study.vote_stim.astype(np.int64),
                          "worker": study.vote_rater.astype(np.int64),
                          "label": study.vote_choice.astype(np.int64)})
    proba = DawidSkene(n_iter=n_iter, tol=tol).fit_predict_proba(votes)
    proba = proba.reindex(columns=range(7), fill_value=0.0).reindex(voted)
    values = proba.to_numpy(dtype=np.float64)
    best = values.argmax(axis=1)
    out["dawid_skene"] = [EMOTIONS[i] for i in best]
    out["ds_confidence"] = values[np.arange(len(best)), best]
    out["disagree"] = out["dawid_skene"] != out["majority"]
    return out
