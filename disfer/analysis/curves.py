"""Robustness curves: accuracy per rater and condition (distortion x level), with bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from disfer.analysis.bootstrap import bootstrap_accuracy
from disfer.analysis.humans import majority_arrays
from disfer.analysis.trials import HUMANS, as_study
from disfer.data.distortions import DISTORTIONS


def rater_trials(study, raters: list[str] | None = None):
    """(rater names, per-trial rater index, stimulus index, correct) for humans (majority) and models."""
    names = [HUMANS, *study.models] if raters is None else list(raters)
    r_idx, stim, correct = [], [], []
    for r, name in enumerate(names):
        if name == HUMANS:
            maj, _, ok = majority_arrays(study)
            defined = (maj >= 0) & study.has_label
        else:
            defined, ok = study.model_correct(name)
        s = np.flatnonzero(defined)
        r_idx.append(np.full(len(s), r, np.int64))
        stim.append(s)
        correct.append(ok[s])
    if not names:
        return names, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    return names, np.concatenate(r_idx), np.concatenate(stim), np.concatenate(correct)


def robustness_curve(data, raters: list[str] | None = None, bootstrap: int = 1000, seed: int = 0,
                     level: float = 0.95) -> pd.DataFrame:
    """Accuracy of each rater per condition with a bootstrap CI over sources.

    raters: "humans" (the majority vote) and model ids; default: humans and every model.
    Columns: rater, distortion, level, accuracy, ci_low, ci_high, n (labelled stimuli rated).
    Rows for a rater without trials in a condition are left out.
    """
    study = as_study(data)
    names, r_idx, stim, correct = rater_trials(study, raters)
    cond = study.conditions
    n_cond = len(cond)
    key = r_idx * n_cond + study.condition_index[stim]
    n_keys = len(names) * n_cond
    n = np.bincount(key, minlength=n_keys)
    right = np.bincount(key, weights=correct.astype(np.float64), minlength=n_keys)
    _, src_of_stim = study.source_codes
    low, high = bootstrap_accuracy(src_of_stim[stim], key, correct, len(study.source_codes[0]),
                                   n_keys, replicates=bootstrap, seed=seed, level=level)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = right / n
    out = pd.DataFrame({
        "rater": np.repeat(np.array(names, dtype=object), n_cond),
        "distortion": np.tile(cond["distortion"].to_numpy(), len(names)),
        "level": np.tile(cond["level"].to_numpy(), len(names)),
        "accuracy": acc, "ci_low": low, "ci_high": high, "n": n,
    })
    return out[out["n"] > 0].reset_index(drop=True)


def condition_params(store) -> pd.DataFrame:
    """distortion, level, param, param_name of every condition built in the store: the parameter
    each level was built with (the stimuli's `param`, as stored: a rebuild may change the registry's
    defaults) and what it means (the registry's `param_name`; 'level' for a distortion it does not
    know). The original is level 0 with no parameter."""
    with store.read() as con:
        rows = con.execute("SELECT distortion, level, min(param) FROM stimuli GROUP BY ALL"
                           " ORDER BY distortion, level").fetchall()
    out = pd.DataFrame(rows, columns=["distortion", "level", "param"]).astype({"level": np.int64,
                                                                               "param": float})
    out.loc[out["level"] == 0, "param"] = np.nan
    out["param_name"] = [DISTORTIONS[d].param_name if d in DISTORTIONS else "level"
                         for d in out["distortion"]]
    return out


def with_params(curve: pd.DataFrame, params: pd.DataFrame) -> pd.DataFrame:
    """A `robustness_curve` with each condition's `param` and `param_name` (`condition_params`)
    added, for a figure whose x axis shows sigma 0.8 / 1.1 / 1.4 rather than levels 1 / 2 / 3."""
    if curve.empty:
        return curve.assign(param=pd.Series(dtype=float), param_name=pd.Series(dtype=object))
    return curve.merge(params, on=["distortion", "level"], how="left")
