"""The chart builders draw what they are given: the numbers in the spec are the numbers passed in."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from disfer import charts
from disfer.emotions import EMOTIONS


def _spec(chart) -> dict:
    return json.loads(chart.to_json())


def _datasets(spec: dict) -> list[list[dict]]:
    return list(spec.get("datasets", {}).values())


def _curve() -> pd.DataFrame:
    rows = [("humans", "original", 0, 0.8, 0.75, 0.85), ("cnn", "original", 0, 0.6, 0.55, 0.65)]
    for d in ("gaussian_blur", "salt_pepper"):
        for level in (1, 2, 3):
            rows.append(("humans", d, level, 0.8 - 0.1 * level, 0.7 - 0.1 * level, 0.9 - 0.1 * level))
            rows.append(("cnn", d, level, 0.6 - 0.15 * level, 0.5 - 0.15 * level, 0.7 - 0.15 * level))
    return pd.DataFrame(rows, columns=["rater", "distortion", "level", "accuracy", "ci_low", "ci_high"])


def test_robustness_chart_has_one_panel_per_distortion_starting_from_the_original():
    spec = _spec(charts.robustness_chart(_curve()))
    assert spec["facet"]["field"] == "distortion"
    assert spec["facet"]["sort"] == ["gaussian_blur", "salt_pepper"]
    rows = pd.DataFrame(_datasets(spec)[0])
    # the original accuracy is drawn at level 0 of each panel, the panel "original" is gone
    assert set(rows["distortion"]) == {"gaussian_blur", "salt_pepper"}
    start = rows[(rows["level"] == 0) & (rows["rater"] == "humans")]
    assert sorted(start["accuracy"]) == [0.8, 0.8]
    marks = [layer["mark"]["type"] for layer in spec["spec"]["layer"]]
    assert marks == ["area", "line"]  # the confidence band under the line


def test_robustness_chart_without_bounds_draws_only_lines():
    spec = _spec(charts.robustness_chart(_curve().drop(columns=["ci_low", "ci_high"])))
    assert [layer["mark"]["type"] for layer in spec["spec"]["layer"]] == ["line"]


def test_humans_are_black_and_listed_first():
    scale = charts._rater_colour(["cnn", "humans", "abc"])
    assert scale.domain == ["humans", "abc", "cnn"]
    assert scale.range[0] == "#222222"
    assert "#222222" not in scale.range[1:]


def test_confusion_heatmap_keeps_every_cell_and_the_emotion_order():
    rng = np.random.default_rng(0)
    m = pd.DataFrame(rng.random((7, 7)), index=list(EMOTIONS), columns=list(EMOTIONS))
    spec = _spec(charts.confusion_heatmap(m, title="humans"))
    rows = pd.DataFrame(_datasets(spec)[0])
    assert len(rows) == 49
    cell = rows[(rows["label"] == "fear") & (rows["predicted"] == "surprise")]["value"].item()
    assert cell == pytest.approx(m.loc["fear", "surprise"])
    assert spec["layer"][0]["encoding"]["x"]["sort"] == list(EMOTIONS)


def test_offdiag_scatter_names_pearson_r_in_the_title():
    pts = pd.DataFrame({"label": ["fear", "anger"], "predicted": ["surprise", "disgust"],
                        "humans": [0.2, 0.1], "cnn": [0.3, 0.05]})
    spec = _spec(charts.offdiag_scatter(pts, x="humans", y="cnn", r=0.4567))
    assert "0.46" in spec["title"]
    nan_spec = _spec(charts.offdiag_scatter(pts, x="humans", y="cnn", r=float("nan")))
    assert "Pearson" not in nan_spec["title"]


def test_agreement_histogram_marks_the_paper_bands_and_counts_every_stimulus():
    p_i = pd.Series([0.1, 0.4, 0.95, 1.0, np.nan])
    spec = _spec(charts.agreement_histogram(p_i, bins=10))
    data = _datasets(spec)
    rules = [d for d in data if d and "at" in d[0]][0]
    assert [r["at"] for r in rules] == [0.3, 0.5, 0.9]
    bars = pd.DataFrame([d for d in data if d and "n" in d[0]][0])
    assert len(bars) == 10 and bars["n"].sum() == 4  # the stimulus without votes is not drawn
    assert bars.loc[bars["start"] == 0.9, "n"].item() == 2  # 0.95 and 1.0 in the last bin


def test_label_crosstab_counts_each_pair():
    frame = pd.DataFrame({"majority": ["fear", "fear", "anger"], "dawid_skene": ["fear", "surprise", "anger"]})
    rows = pd.DataFrame(_datasets(_spec(charts.label_crosstab(frame, rows="majority", columns="dawid_skene")))[0])
    assert rows.set_index(["majority", "dawid_skene"])["n"].to_dict() == {
        ("anger", "anger"): 1, ("fear", "fear"): 1, ("fear", "surprise"): 1}


def test_pair_grid_and_saliency_overlay_build():
    pairs = pd.DataFrame({"rater_a": ["humans", "cnn"], "rater_b": ["cnn", "humans"], "value": [0.3, 0.3]})
    spec = _spec(charts.pair_grid(pairs, title="error consistency"))
    assert spec["title"] == "error consistency"
    face = np.zeros((48, 48), np.uint8)
    sal = np.zeros((48, 48))
    sal[10, 20] = 5.0
    rows = pd.DataFrame(_datasets(_spec(charts.saliency_overlay(face, sal)))[0])
    assert len(rows) == 48 * 48
    assert rows["saliency"].max() == 1.0  # scaled to the peak
    assert rows.loc[rows["saliency"].idxmax(), ["x", "y"]].tolist() == [20, 10]


def test_charts_export_as_png_and_svg():
    chart = charts.count_bars(pd.DataFrame({"emotion": list(EMOTIONS), "n": range(7)}), category="emotion")
    png = charts.chart_png(chart)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = charts.chart_svg(chart)
    assert svg.lstrip().startswith("<svg") and "happiness" in svg
