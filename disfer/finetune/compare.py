"""Before / after: a fine-tuned variant against its parent, from the analysis layer's curves
(the held-out comparison itself is `disfer.analysis.heldout`)."""

from __future__ import annotations

import pandas as pd


def robustness_drop(curve: pd.DataFrame) -> pd.DataFrame:
    """Per rater and distortion: accuracy on originals, at the strongest level, and the drop.

    `curve` is `disfer.analysis.robustness_curve`'s frame (rater, distortion, level, accuracy, ...).
    Columns: rater, distortion, strongest_level, original, strongest, drop_points (original minus
    strongest, in percentage points; the issue's goal is at most 5, as people do).
    """
    cols = ["rater", "distortion", "strongest_level", "original", "strongest", "drop_points"]
    if curve.empty:
        return pd.DataFrame(columns=cols)
    base = curve[curve["distortion"] == "original"].set_index("rater")["accuracy"]
    rows = []
    for (rater, distortion), group in curve[curve["distortion"] != "original"].groupby(
            ["rater", "distortion"], sort=False):
        top = group.loc[group["level"].idxmax()]
        original = float(base.get(rater, float("nan")))
        rows.append((rater, distortion, int(top["level"]), original, float(top["accuracy"]),
                     100.0 * (original - float(top["accuracy"]))))
    return pd.DataFrame(rows, columns=cols)


def curve_for_chart(curve) -> pd.DataFrame:
    """The training curve's accuracies per epoch (`accuracy_by_epoch`), keeping only the series
    with at least two points: a line chart draws no line through one point, and a legend entry
    without a line misleads (after one epoch, training accuracy has one point)."""
    from disfer.analysis.training import accuracy_by_epoch

    wide = accuracy_by_epoch(curve)
    return wide[[c for c in wide.columns if wide[c].notna().sum() >= 2]]
