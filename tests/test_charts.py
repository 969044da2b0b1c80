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


def _panels(spec: dict) -> list[dict]:
    return spec["concat"]


def _panel_rows(panel: dict, spec: dict) -> pd.DataFrame:
    line = next(layer for layer in panel["layer"] if layer["mark"]["type"] == "line")
    return pd.DataFrame(spec["datasets"][line["data"]["name"]])


def test_robustness_chart_has_one_panel_per_distortion_starting_from_the_original():
    spec = _spec(charts.robustness_chart(_curve()))
    panels = _panels(spec)
    assert [p["title"] for p in panels] == ["gaussian blur", "salt pepper"]
    for panel in panels:
        rows = _panel_rows(panel, spec)
        # the original accuracy is the first point of each panel
        start = rows[(rows["level"] == 0) & (rows["rater"] == "humans")]
        assert start["accuracy"].tolist() == [0.8] and start["setting"].tolist() == ["none"]
        marks = [layer["mark"]["type"] for layer in panel["layer"]]
        assert marks == ["area", "line", "rule"]  # the band under the line, then chance
    assert spec["autosize"] == {"type": "pad", "contains": "padding"}


def test_robustness_chart_shows_the_parameter_chance_and_percent():
    params = pd.DataFrame({"distortion": ["gaussian_blur"] * 3 + ["salt_pepper"] * 3,
                           "level": [1, 2, 3] * 2, "param": [0.8, 1.1, 1.4, 0.02, 0.04, 0.06],
                           "param_name": ["sigma"] * 3 + ["probability"] * 3})
    curve = _curve().merge(params, on=["distortion", "level"], how="left")
    spec = _spec(charts.robustness_chart(curve))
    blur, noise = _panels(spec)
    x = blur["layer"][1]["encoding"]["x"]
    assert x["sort"] == ["none", "0.8", "1.1", "1.4"] and x["title"] == "sigma"
    assert noise["layer"][1]["encoding"]["x"]["sort"] == ["none", "0.02", "0.04", "0.06"]
    assert noise["layer"][1]["encoding"]["x"]["title"] == "probability"
    y = blur["layer"][1]["encoding"]["y"]
    assert y["axis"]["format"] == ".0%" and y["scale"]["domain"] == [0, 1]
    chance = blur["layer"][2]
    assert spec["datasets"][chance["data"]["name"]] == [{"chance": pytest.approx(1 / 7)}]


def test_robustness_legend_never_cuts_a_model_name():
    curve = _curve().replace({"cnn": "minixception-ft-gaussian_blur:v2.1"})
    spec = _spec(charts.robustness_chart(curve))
    colour = spec["concat"][0]["layer"][1]["encoding"]["color"]
    assert colour["legend"]["labelLimit"] == 0
    assert colour["field"] == "rater"  # a field, not shorthand: ':' and '.' in a name are safe
    assert "minixception-ft-gaussian_blur:v2.1" in colour["scale"]["domain"]


def test_robustness_chart_without_bounds_draws_only_lines():
    spec = _spec(charts.robustness_chart(_curve().drop(columns=["ci_low", "ci_high"])))
    assert [layer["mark"]["type"] for layer in _panels(spec)[0]["layer"]] == ["line", "rule"]


def test_every_chart_sizes_itself_and_is_described():
    """Streamlit applies autosize `fit` to single and layered views unless the spec says otherwise,
    which squeezed a one-row heat map, labels and all, into 60 px: every builder says `pad`."""
    m = pd.DataFrame(np.eye(7), index=list(EMOTIONS), columns=list(EMOTIONS))
    pairs = pd.DataFrame({"model": ["cnn"], "condition": ["original"], "value": [0.3]})
    built = [charts.robustness_chart(_curve()), charts.confusion_heatmap(m, title="t"),
             charts.pair_grid(pairs, a="model", b="condition", title="t"),
             charts.label_crosstab(pd.DataFrame({"a": ["fear"], "b": ["anger"]}), rows="a", columns="b"),
             charts.agreement_histogram(pd.Series([0.5])), charts.accuracy_histogram(pd.DataFrame({"accuracy": [0.5]})),
             charts.count_bars(pd.DataFrame({"e": ["x"], "n": [1]}), category="e")]
    for chart in built:
        spec = _spec(chart)
        assert spec["autosize"] == {"type": "pad", "contains": "padding"}
        assert spec["description"]


def test_pair_grid_is_large_enough_for_a_single_model():
    pairs = pd.DataFrame({"model": ["cnn"] * 10, "condition": [f"c{i}" for i in range(10)], "value": 0.5})
    spec = _spec(charts.pair_grid(pairs, a="model", b="condition", value="value", title="r"))
    assert spec["height"] >= 80 and spec["width"] >= 40 * 10    # room for "-0.09" in each cell
    assert spec["layer"][0]["encoding"]["x"]["axis"]["labelLimit"] == 0


def test_pair_grid_of_the_papers_ten_conditions_fits_a_1024_window():
    """At 1024x768 the main column is 564 px wide; Figure 4 (ten conditions) was 812 px, cut off."""
    pairs = pd.DataFrame({"model": ["minixception"] * 10, "condition": [f"c{i}" for i in range(10)],
                          "value": 0.5})
    spec = _spec(charts.pair_grid(pairs, a="model", b="condition", value="value"))
    assert spec["width"] == 44 * 10                                 # + ~85 px of model names < 564
    legend = spec["layer"][0]["encoding"]["color"]["legend"]
    assert legend["orient"] == "top" and legend["direction"] == "horizontal"   # not a column on the right
    few = _spec(charts.pair_grid(pairs.head(3), a="model", b="condition", value="value"))
    assert few["width"] == 180                                      # few conditions keep wide cells (min 180)


def test_confusion_grid_shares_one_colour_scale_across_raters_and_conditions():
    rows = []
    for rater in ("cnn", "humans"):
        for cond in ("original", "gaussian_blur 1"):
            for a in EMOTIONS:
                for b in EMOTIONS:
                    rows.append((rater, cond, a, b, 1.0 if a == b else 0.0))
    long = pd.DataFrame(rows, columns=["rater", "condition", "label", "predicted", "value"])
    spec = _spec(charts.confusion_grid(long, column_order=["original", "gaussian_blur 1"]))
    assert spec["facet"]["row"]["sort"] == ["humans", "cnn"]  # humans first
    assert spec["facet"]["column"]["sort"] == ["original", "gaussian_blur 1"]
    assert spec["resolve"]["scale"]["color"] == "shared"
    cells = spec["spec"]["layer"][0]["encoding"]
    assert cells["color"]["scale"]["domain"] == [0, 1]  # fixed: panels compare
    assert cells["x"]["scale"]["domain"] == list(EMOTIONS)
    text = spec["spec"]["layer"][1]["mark"]
    assert text["fontSize"] >= 10
    # the colour bar above the panels: a grid wider than a narrow window scrolls, the scale stays in view
    assert cells["color"]["legend"]["orient"] == "top"
    assert len(spec["datasets"][spec["data"]["name"]]) == 4 * 49


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
    assert spec["layer"][0]["encoding"]["color"]["scale"]["domain"] == [0, 1]


def test_offdiag_scatter_names_pearson_r_in_an_uncut_subtitle():
    pts = pd.DataFrame({"label": ["fear", "anger"], "predicted": ["surprise", "disgust"],
                        "humans": [0.2, 0.1], "minixception-ft-gaussian_blur": [0.3, 0.05]})
    spec = _spec(charts.offdiag_scatter(pts, x="humans", y="minixception-ft-gaussian_blur", r=0.4567))
    assert spec["title"]["text"] == "minixception-ft-gaussian_blur against humans"
    assert "r = 0.46" in spec["title"]["subtitle"]
    assert spec["title"]["limit"] == 0  # never cut to the plot's width
    nan_spec = _spec(charts.offdiag_scatter(pts, x="humans", y="minixception-ft-gaussian_blur", r=float("nan")))
    assert "r = n/a" in nan_spec["title"]["subtitle"]


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
    spec = _spec(charts.label_crosstab(frame, rows="majority", columns="dawid_skene"))
    rows = pd.DataFrame(_datasets(spec)[0])
    assert rows.set_index(["majority", "dawid_skene"])["n"].to_dict() == {
        ("anger", "anger"): 1, ("fear", "fear"): 1, ("fear", "surprise"): 1}
    # all seven emotions on both axes, labels never dropped for overlap
    x = spec["layer"][0]["encoding"]["x"]
    assert x["scale"]["domain"] == list(EMOTIONS) and x["axis"]["labelOverlap"] is False
    assert spec["width"] >= 7 * 40


def test_pair_grid_and_saliency_overlay_build():
    pairs = pd.DataFrame({"rater_a": ["humans", "cnn"], "rater_b": ["cnn", "humans"], "value": [0.3, 0.3]})
    spec = _spec(charts.pair_grid(pairs, title="error consistency"))
    assert spec["title"]["text"] == "error consistency"
    face = np.zeros((48, 48), np.uint8)
    sal = np.zeros((48, 48))
    sal[10, 20] = 5.0
    rows = pd.DataFrame(_datasets(_spec(charts.saliency_overlay(face, sal)))[0])
    assert len(rows) == 48 * 48
    assert rows["saliency"].max() == 1.0  # scaled to the peak
    assert rows.loc[rows["saliency"].idxmax(), ["x", "y"]].tolist() == [20, 10]


def test_saliency_panels_say_what_high_means():
    rng = np.random.default_rng(0)
    maps = pd.DataFrame({"row": np.repeat(np.arange(48), 48), "column": np.tile(np.arange(48), 48),
                         "grey": rng.integers(0, 256, 48 * 48), "gradcam": rng.random(48 * 48),
                         "gradient_shap": rng.normal(size=48 * 48) * 0.3})
    spec = _spec(charts.saliency_panels(maps, explained="surprise"))
    panels = spec["hconcat"]
    assert [p["title"]["text"] for p in panels] == ["face", "Grad-CAM (surprise)", "Gradient SHAP (surprise)"]
    legends = {}
    for p in panels:
        for layer in p["layer"]:
            colour = layer["encoding"]["color"]
            if colour.get("legend") is not None:
                legends[colour["field"]] = colour
    assert set(legends) == {"gradcam", "gradient_shap"}              # the face has no colour bar
    assert legends["gradcam"]["legend"]["title"] == ["Grad-CAM: evidence", "for surprise"]
    assert legends["gradcam"]["scale"]["domain"] == [0, 1]
    assert "strongest" in legends["gradcam"]["legend"]["labelExpr"]
    peak = float(np.abs(maps["gradient_shap"]).max())
    assert legends["gradient_shap"]["scale"]["domain"] == pytest.approx([-peak, peak])  # 0 in the middle
    assert legends["gradient_shap"]["legend"]["title"] == ["Gradient SHAP: red for", "surprise, blue against"]
    assert len(_datasets(spec)[0]) == 48 * 48


def test_charts_export_as_png_and_svg():
    chart = charts.count_bars(pd.DataFrame({"emotion": list(EMOTIONS), "n": range(7)}), category="emotion")
    png = charts.chart_png(chart)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = charts.chart_svg(chart)
    assert svg.lstrip().startswith("<svg") and "happiness" in svg
