"""Humans and models side by side, condition by condition: the conditions' display names, every
rater's confusion matrix in one condition, and the report's model x condition grid of error
correlation and consistency with the humans."""

from __future__ import annotations

import pandas as pd

from disfer.analysis.confusion import confusion_matrix
from disfer.analysis.trials import HUMANS, Study

GRID_COLUMNS = ["model", "condition", "error_correlation", "error_consistency", "n"]


def condition_name(distortion: str, level: int) -> str:
    """'original', or the distortion and its level: 'gaussian_blur 2'."""
    return "original" if distortion == "original" else f"{distortion} {int(level)}"


def condition_names(study: Study) -> tuple[list[str], list[tuple[str, int]]]:
    """(display names, (distortion, level) keys) of the study's conditions, in canonical order."""
    keys = [(str(d), int(lvl)) for d, lvl in study.conditions.itertuples(index=False)]
    return [condition_name(d, lvl) for d, lvl in keys], keys


def confusion_matrices(study: Study, distortion: str | None = None,
                       level: int | None = None) -> dict[str, pd.DataFrame]:
    """rater -> its row-normalised confusion matrix (`confusion_matrix`) in one condition (None, None:
    all conditions pooled). Raters: HUMANS (every vote pooled) when there are votes, then each model
    in the study's order; a rater without a labelled trial in the condition is left out."""
    raters = ([HUMANS] if len(study.vote_stim) else []) + list(study.models)
    out = {r: confusion_matrix(study, r, distortion, level) for r in raters}
    return {r: m for r, m in out.items() if m.notna().any().any()}


def error_grid(report: dict) -> pd.DataFrame:
    """One row per model and condition of a `study_report`: model, condition (`condition_name`),
    error_correlation (off-diagonal Pearson r of its confusion matrix with the humans'),
    error_consistency (kappa with the human majority), n. Empty when the study has no votes:
    both compare a model with the humans."""
    rows = [{"model": model, "condition": condition_name(c["distortion"], c["level"]),
             "error_correlation": c["offdiag_pearson_r_vs_humans"],
             "error_consistency": c["error_consistency_vs_humans"], "n": c["n"]}
            for model, section in report["models"].items() for c in section["per_condition"]]
    if not report["counts"]["votes"]:
        rows = []
    grid = pd.DataFrame(rows, columns=GRID_COLUMNS)
    return grid.astype({"error_correlation": float, "error_consistency": float})


def confusion_panels(study: Study, distortion: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The confusion matrices of one distortion as small multiples (Figure 3): (long, columns).

    long: rater, condition, label, predicted, value (a row proportion), for every rater of
    `confusion_matrices` in the original condition and each level of `distortion` (None: all
    conditions pooled, one column 'all conditions'); columns: the conditions in display order."""
    if distortion is None:
        keys = [(None, None)]
        names = ["all conditions"]
    else:
        _, all_keys = condition_names(study)
        keys = [k for k in all_keys if k[0] in ("original", distortion)]
        names = [condition_name(d, lvl) for d, lvl in keys]
    frames = []
    for name, (d, lvl) in zip(names, keys, strict=True):
        for rater, matrix in confusion_matrices(study, d, lvl).items():
            long = matrix.rename_axis(index="label", columns="predicted").stack(future_stack=True)
            frames.append(long.rename("value").reset_index().assign(rater=rater, condition=name))
    columns = ["rater", "condition", "label", "predicted", "value"]
    long = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    present = set(long["condition"])
    return long, [n for n in names if n in present]
