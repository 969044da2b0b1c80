"""Altair chart builders for the dashboard and for figures in papers: drawing only, no statistics.

Every builder takes the frame an analysis function returned (columns named in its docstring) and
returns an Altair chart; numbers are plotted as given. Builders never import streamlit, so the
same charts can be saved to PNG/SVG from a script (`chart_png`, `chart_svg`).
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from disfer.analysis.trials import HUMANS
from disfer.data.distortions import distortion_rank
from disfer.emotions import EMOTIONS

# Agreement bands of the paper (Section 4): P_i below 0.3 is near chance, above 0.9 near-unanimous.
AGREEMENT_BANDS = (0.3, 0.5, 0.9)
_BAND_NAMES = ("< 0.3 (low)", "0.3 to 0.5", "0.5 to 0.9", "> 0.9 (high)")


def _rater_colour(raters: Sequence[str]) -> alt.Scale:
    """Humans always black, models from a categorical palette, in a stable order."""
    models = sorted(r for r in set(raters) if r != HUMANS)
    ordered = ([HUMANS] if HUMANS in raters else []) + models
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]
    colours = ["#222222" if r == HUMANS else palette[models.index(r) % len(palette)] for r in ordered]
    return alt.Scale(domain=ordered, range=colours)


def _distortions_in(values) -> list[str]:
    return sorted(pd.unique(values), key=lambda d: (distortion_rank(d), d))


# Vega-Lite's default sizing: width and height are the plot's, axes, titles and legends come on
# top. Streamlit otherwise sets `fit` on single and layered views, which squeezes the whole chart,
# labels included, into width x height (a one-row heat map ended up a few pixels high).
PAD = alt.AutoSizeParams(type="pad", contains="padding")
CHANCE = 1 / len(EMOTIONS)


def _title(text: str, subtitle: str | Sequence[str] | None = None) -> alt.TitleParams:
    # limit=0: never cut a title to the plot's width (an r value at its end went missing).
    return alt.TitleParams(text=text, subtitle=subtitle or alt.Undefined, limit=0,
                           anchor="start")


def _finish(chart, title: str | alt.TitleParams | None, description: str):
    """Every figure: its title, a description for screen readers, the padding sizing."""
    props = {"autosize": PAD, "description": description}
    if title:
        props["title"] = title if isinstance(title, alt.TitleParams) else _title(title)
    return chart.properties(**props)


def _setting(row_level, row_param) -> str:
    # The x value of a robustness panel: the distortion's parameter, or its level where unknown.
    if row_level == 0:
        return "none"
    return f"{row_param:g}" if row_param is not None and np.isfinite(row_param) else str(int(row_level))


def robustness_chart(curve: pd.DataFrame, *, value: str = "accuracy", low: str = "ci_low",
                     high: str = "ci_high", rater: str = "rater", columns: int = 3,
                     title: str = "Accuracy under each distortion") -> alt.TopLevelMixin:
    """Accuracy against the distortion's strength, one panel per distortion (the paper's Figure 2).

    `curve`: one row per (rater, distortion, level) with `value` and, when present, the
    confidence bounds `low`/`high` drawn as a band, and `param`/`param_name` (the distortion's
    parameter at that level and what it is: sigma 0.8, probability 0.02) put on the x axis; without
    them the axis shows the level. Rows of the `original` distortion are drawn as the first point
    ("none") of every panel, so each curve starts from the undistorted accuracy. A dashed line marks
    chance (1/7); accuracy in percent.
    """
    data = curve.copy()
    if "param" not in data.columns:
        data["param"] = np.nan
    panels = [d for d in _distortions_in(data["distortion"]) if d != "original"]
    base = data[data["distortion"] == "original"]
    if not panels:
        panels = ["original"]
        frames = {"original": data}
    else:
        frames = {d: pd.concat([base.assign(distortion=d), data[data["distortion"] == d]],
                               ignore_index=True) for d in panels}
    scale = _rater_colour(list(data[rater].unique()))
    colour = alt.Color(field=rater, type="nominal", title="rater", scale=scale,
                       legend=alt.Legend(orient="bottom", columns=3, labelLimit=0, titleLimit=0,
                                         symbolOpacity=1, symbolType="stroke", symbolStrokeWidth=3))
    y_scale = alt.Scale(domain=[0, 1])
    chance = pd.DataFrame({"chance": [CHANCE]})
    charts = []
    for d in panels:
        frame = frames[d].assign(setting=[_setting(lv, p) for lv, p in zip(
            frames[d]["level"], frames[d]["param"], strict=True)])
        order = list(dict.fromkeys(frame.sort_values("level")["setting"]))
        names = [n for n in frame.get("param_name", pd.Series(dtype=object)).dropna().unique()
                 if n not in ("none", "")]
        x = alt.X(field="setting", type="ordinal", sort=order, title=names[0] if names else "level",
                  axis=alt.Axis(labelAngle=0))
        line = alt.Chart(frame).mark_line(point=True).encode(
            x=x, y=alt.Y(field=value, type="quantitative", title=value, scale=y_scale,
                         axis=alt.Axis(format=".0%")),
            color=colour,
            tooltip=[alt.Tooltip(field=rater, type="nominal"), alt.Tooltip(field="setting", type="nominal"),
                     alt.Tooltip(field=value, type="quantitative", format=".1%")])
        layers = [line]
        if low in frame.columns and high in frame.columns:
            layers.insert(0, alt.Chart(frame).mark_area(opacity=0.18).encode(
                x=x, y=alt.Y(field=low, type="quantitative", scale=y_scale),
                y2=alt.Y2(field=high), color=colour))
        layers.append(alt.Chart(chance).mark_rule(color="#777777", strokeDash=[4, 4]).encode(
            y=alt.Y(field="chance", type="quantitative", scale=y_scale),
            tooltip=[alt.Tooltip(field="chance", type="quantitative", format=".1%", title="chance (1/7)")]))
        charts.append(alt.layer(*layers).properties(width=180, height=200, title=d.replace("_", " ")))
    figure = alt.concat(*charts, columns=columns).resolve_scale(color="shared")
    return _finish(figure, title, "Accuracy of the human majority and of each model against the "
                   "strength of each distortion, with confidence bands and a dashed line at chance (1/7).")


def _emotion_order(*columns) -> list[str]:
    seen = set().union(*(set(c) for c in columns)) if columns else set()
    return list(EMOTIONS) + sorted(str(v) for v in seen - set(EMOTIONS))


def _matrix_cells(order, *, label: str, predicted: str, cell: int, font: int, legend_top: bool = False):
    """The layers of one row-proportion heat map with a fixed 0..1 colour scale (so matrices compare).
    legend_top: the colour bar above the panels, where a grid wider than the window shows it."""
    x = alt.X(field=predicted, type="nominal", sort=order, scale=alt.Scale(domain=order), title="answer",
              axis=alt.Axis(labelAngle=-40, labelOverlap=False, labelLimit=0))
    y = alt.Y(field=label, type="nominal", sort=order, scale=alt.Scale(domain=order), title="label",
              axis=alt.Axis(labelOverlap=False, labelLimit=0))
    cells = alt.Chart().mark_rect().encode(
        x=x, y=y, color=alt.Color(field="value", type="quantitative", title="share of the row",
                                  scale=alt.Scale(scheme="blues", domain=[0, 1]),
                                  legend=alt.Legend(format=".0%", orient="top", direction="horizontal")
                                  if legend_top else alt.Legend(format=".0%")),
        tooltip=[alt.Tooltip(field=label, type="nominal"), alt.Tooltip(field=predicted, type="nominal"),
                 alt.Tooltip(field="value", type="quantitative", format=".1%")])
    text = alt.Chart().mark_text(fontSize=font).transform_filter("isValid(datum.value)").transform_calculate(
        pct="round(datum.value * 100)").encode(
        x=x, y=y, text=alt.Text(field="pct", type="quantitative", format=".0f"),
        color=alt.condition("datum.value > 0.5", alt.value("white"), alt.value("black")))
    return cells, text


def confusion_heatmap(matrix: pd.DataFrame, *, title: str = "", fmt: str = ".2f",
                      label: str = "label", predicted: str = "predicted") -> alt.TopLevelMixin:
    """One confusion matrix as a heat map: rows = true label, columns = answer, cells in percent of
    the row on a fixed 0-100% colour scale (`matrix`: row proportions, index = label, columns =
    answer). Emotions keep the canonical order."""
    long = matrix.rename_axis(index=label, columns=predicted).stack().rename("value").reset_index()
    order = _emotion_order(long[label], long[predicted])
    cells, text = _matrix_cells(order, label=label, predicted=predicted, cell=34, font=12)
    chart = alt.layer(cells, text, data=long).properties(width=34 * len(order), height=34 * len(order))
    return _finish(chart, title, f"Confusion matrix{': ' + title if title else ''}; rows are the "
                   "label, columns the answer, each cell the percentage of the row.")


def confusion_grid(long: pd.DataFrame, *, row: str = "rater", column: str = "condition",
                   column_order: Sequence[str] | None = None, title: str = "",
                   cell: int = 24) -> alt.TopLevelMixin:
    """Confusion matrices as small multiples (the paper's Figure 3): one row of panels per `row`
    (rater), one column per `column` (condition), all on ONE colour scale (0-100% of the row), cell
    text in percent. `long`: one row per (row, column, label, predicted) with `value` (a row
    proportion)."""
    order = _emotion_order(long["label"], long["predicted"])
    cells, text = _matrix_cells(order, label="label", predicted="predicted", cell=cell, font=10,
                                legend_top=True)
    raters = list(dict.fromkeys(long[row]))
    raters = ([HUMANS] if HUMANS in raters else []) + [r for r in raters if r != HUMANS]
    columns = list(column_order) if column_order is not None else list(dict.fromkeys(long[column]))
    chart = alt.layer(cells, text, data=long).properties(width=cell * len(order), height=cell * len(order)).facet(
        row=alt.Row(field=row, type="nominal", sort=raters, title=None,
                    header=alt.Header(labelFontSize=13, labelFontWeight="bold", labelLimit=0)),
        column=alt.Column(field=column, type="nominal", sort=columns, title=None,
                          header=alt.Header(labelFontSize=13, labelLimit=0)),
        spacing=12).resolve_scale(color="shared")
    return _finish(chart, title, "Confusion matrices of each rater (rows of panels) in each condition "
                   "(columns of panels), on one shared colour scale; each cell is the percentage of "
                   "the label's row.")


def offdiag_scatter(points: pd.DataFrame, *, x: str, y: str, r: float | None = None,
                    title: str = "") -> alt.TopLevelMixin:
    """Off-diagonal confusion entries of two raters against each other (the paper's Figure 5).

    `points`: one row per (label, predicted) pair off the diagonal, with the two raters' rates in
    columns `x` and `y`; `r` (Pearson's r, computed by the analysis layer) goes in the subtitle.
    """
    heading = title or f"{y} against {x}"
    subtitle = ("off-diagonal Pearson r = " + (f"{r:.2f}" if r is not None and np.isfinite(r) else "n/a")
                + "; dashed: equal rates")
    top = float(max(points[x].max(), points[y].max(), 0.01)) if len(points) else 1.0
    diagonal = alt.Chart(pd.DataFrame({"a": [0, top], "b": [0, top]})).mark_line(
        color="#999999", strokeDash=[4, 4]).encode(x=alt.X(field="a", type="quantitative"),
                                                   y=alt.Y(field="b", type="quantitative"))
    tips = [alt.Tooltip(field=c, type="nominal") for c in points.columns if points[c].dtype == object][:2] + [
        alt.Tooltip(field=x, type="quantitative", format=".1%"),
        alt.Tooltip(field=y, type="quantitative", format=".1%")]
    dots = alt.Chart(points).mark_circle(size=60, opacity=0.7).encode(
        x=alt.X(field=x, type="quantitative", title=f"{x} (share of the row)", axis=alt.Axis(format=".0%")),
        y=alt.Y(field=y, type="quantitative", title=f"{y} (share of the row)", axis=alt.Axis(format=".0%")),
        tooltip=tips)
    chart = alt.layer(diagonal, dots).properties(width=340, height=340)
    return _finish(chart, _title(heading, subtitle),
                   f"Each off-diagonal confusion rate of {y} against that of {x}; {subtitle}.")


def pair_grid(pairs: pd.DataFrame, *, a: str = "rater_a", b: str = "rater_b", value: str = "value",
              title: str = "", fmt: str = ".2f", domain: tuple[float, float] = (-1.0, 1.0),
              order_b: Sequence[str] | None = None) -> alt.TopLevelMixin:
    """A grid of one value per (a, b) pair: rater by rater, or model by condition (the paper's
    Figure 4: error correlation and error consistency). Humans come first on either axis.

    Narrower cells from seven columns on, and the colour bar on top: the paper's ten conditions
    fit a 1024-pixel-wide window."""
    def order(values):
        seen = list(dict.fromkeys(values))
        return ([HUMANS] if HUMANS in seen else []) + [v for v in seen if v != HUMANS]

    rows_a = order(pairs[a])
    cols_b = list(order_b) if order_b is not None else order(pairs[b])
    x = alt.X(field=b, type="nominal", sort=cols_b, title=None,
              axis=alt.Axis(labelAngle=-40, labelLimit=0, labelOverlap=False))
    y = alt.Y(field=a, type="nominal", sort=rows_a, title=None, axis=alt.Axis(labelLimit=0))
    cells = alt.Chart().mark_rect().encode(
        x=x, y=y, color=alt.Color(field=value, type="quantitative", title=value.replace("_", " "),
                                  scale=alt.Scale(scheme="redblue", domain=list(domain), reverse=True),
                                  legend=alt.Legend(orient="top", direction="horizontal", titleLimit=0)),
        tooltip=[alt.Tooltip(field=a, type="nominal"), alt.Tooltip(field=b, type="nominal"),
                 alt.Tooltip(field=value, type="quantitative", format=fmt)])
    cell = 60 if len(cols_b) <= 6 else 44
    text = alt.Chart().mark_text(fontSize=12 if cell == 60 else 11).encode(
        x=x, y=y, text=alt.Text(field=value, type="quantitative", format=fmt),
        color=alt.condition(f"abs(datum['{value}']) > 0.6", alt.value("white"), alt.value("black")))
    chart = alt.layer(cells, text, data=pairs).properties(width=max(cell * len(cols_b), 180),
                                                          height=max(40 * len(rows_a), 80))
    return _finish(chart, title, f"{value.replace('_', ' ')} for each {a} (rows) and {b} (columns).")


def offdiag_points(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str) -> pd.DataFrame:
    """The off-diagonal cells of two confusion matrices side by side (one row per label/answer pair),
    the points of the off-diagonal scatter."""
    rows, cols = np.nonzero(~np.eye(len(a.index), len(a.columns), dtype=bool))
    points = pd.DataFrame({"label": np.asarray(a.index)[rows], "predicted": np.asarray(a.columns)[cols],
                           name_a: a.to_numpy(dtype=float)[rows, cols],
                           name_b: b.reindex(index=a.index, columns=a.columns).to_numpy(dtype=float)[rows, cols]})
    return points.dropna(subset=[name_a, name_b]).reset_index(drop=True)


def _binned(values, bins: int) -> pd.DataFrame:
    # Binned here rather than by Vega-Lite, so a chart of 350,000 stimuli carries 20 rows, not 350,000.
    v = np.asarray(values, dtype=float)
    counts, edges = np.histogram(v[np.isfinite(v)], bins=bins, range=(0.0, 1.0))
    return pd.DataFrame({"start": edges[:-1], "end": edges[1:], "n": counts})


def agreement_histogram(p_i: pd.Series | np.ndarray, *, bins: int = 20, title: str = "") -> alt.Chart:
    """Distribution of the per-stimulus agreement P_i with the 0.3 / 0.5 / 0.9 bands shaded."""
    edges = (0.0,) + AGREEMENT_BANDS + (1.0,)
    bands = pd.DataFrame({"start": edges[:-1], "end": edges[1:], "band": _BAND_NAMES})
    x_scale = alt.Scale(domain=[0, 1])
    shade = alt.Chart(bands).mark_rect(opacity=0.12).encode(
        x=alt.X("start:Q", scale=x_scale), x2="end:Q",
        color=alt.Color("band:N", sort=list(_BAND_NAMES), title="agreement band",
                        scale=alt.Scale(domain=list(_BAND_NAMES),
                                        range=["#d62728", "#ff7f0e", "#bcbd22", "#2ca02c"])))
    rules = alt.Chart(pd.DataFrame({"at": AGREEMENT_BANDS})).mark_rule(strokeDash=[4, 3]).encode(x="at:Q")
    bars = alt.Chart(_binned(p_i, bins)).mark_rect(color="#4c78a8", stroke="white", strokeWidth=0.5).encode(
        x=alt.X("start:Q", title="agreement P_i", scale=x_scale), x2="end:Q",
        y=alt.Y("n:Q", title="stimuli"), y2=alt.datum(0), tooltip=["start", "end", "n"])
    return _finish((shade + bars + rules).properties(width=520, height=240), title,
                   "How many stimuli reach each agreement P_i, with the bands 0.3, 0.5 and 0.9 shaded.")


def accuracy_histogram(values: pd.DataFrame, *, column: str = "accuracy", title: str = "") -> alt.Chart:
    """How many participants reach each accuracy (per-participant accuracy)."""
    chart = alt.Chart(_binned(values[column], 20)).mark_rect(color="#4c78a8", stroke="white", strokeWidth=0.5).encode(
        x=alt.X("start:Q", title=column, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%")),
        x2="end:Q", y=alt.Y("n:Q", title="participants"), y2=alt.datum(0), tooltip=["start", "end", "n"],
    ).properties(width=520, height=220)
    return _finish(chart, title, f"How many participants reach each {column}.")


def label_crosstab(frame: pd.DataFrame, *, rows: str, columns: str, title: str = "") -> alt.Chart:
    """How many items got each (rows, columns) pair of labels, e.g. majority against Dawid-Skene."""
    pairs = frame.groupby([rows, columns]).size().rename("n").reset_index()
    # Every emotion on both axes, with or without items, so the grid is always the full 7 x 7.
    order = _emotion_order(pairs[rows], pairs[columns])
    x = alt.X(field=columns, type="nominal", sort=order, scale=alt.Scale(domain=order),
              axis=alt.Axis(labelAngle=-40, labelOverlap=False, labelLimit=0), title=columns.replace("_", "-"))
    y = alt.Y(field=rows, type="nominal", sort=order, scale=alt.Scale(domain=order),
              axis=alt.Axis(labelOverlap=False, labelLimit=0), title=rows)
    top = float(pairs["n"].max()) if len(pairs) else 1.0
    cells = alt.Chart().mark_rect().encode(
        x=x, y=y, color=alt.Color(field="n", type="quantitative", title="items",
                                  scale=alt.Scale(scheme="blues", type="log")),
        tooltip=[alt.Tooltip(field=rows, type="nominal"), alt.Tooltip(field=columns, type="nominal"),
                 alt.Tooltip(field="n", type="quantitative")])
    text = alt.Chart().mark_text(fontSize=12).encode(
        x=x, y=y, text=alt.Text(field="n", type="quantitative"),
        color=alt.condition(f"datum.n > {top ** 0.5:.6g}", alt.value("white"), alt.value("black")))
    chart = alt.layer(cells, text, data=pairs).properties(width=44 * len(order), height=44 * len(order))
    return _finish(chart, title, f"How many items have each pair of {rows} (rows) and {columns} (columns) labels.")


def count_bars(counts: pd.DataFrame, *, category: str, value: str = "n", title: str = "",
               sort: Sequence[str] | None = None) -> alt.Chart:
    """Counts per category (sources per emotion, votes per playlist, ...)."""
    order = list(sort) if sort is not None else None
    bars = alt.Chart(counts).mark_bar(color="#4c78a8").encode(
        x=alt.X(f"{category}:N", sort=order, title=None), y=alt.Y(f"{value}:Q", title=value),
        tooltip=[category, value])
    text = bars.mark_text(dy=-6).encode(text=f"{value}:Q")
    return _finish((bars + text).properties(width=420, height=220), title, f"{value} per {category}.")


def saliency_overlay(face: np.ndarray, saliency: np.ndarray, *, title: str = "",
                     size: int = 240) -> alt.Chart:
    """A 48x48 face in grey with a saliency map over it (red = more important), as vector cells."""
    face = np.asarray(face, dtype=float)
    sal = np.asarray(saliency, dtype=float)
    rows, cols = np.indices(face.shape)
    peak = float(np.nanmax(np.abs(sal))) if sal.size and np.nanmax(np.abs(sal)) > 0 else 1.0
    data = pd.DataFrame({"x": cols.ravel(), "y": rows.ravel(), "grey": face.ravel(),
                         "saliency": sal.ravel() / peak})
    x = alt.X("x:O", axis=None)
    y = alt.Y("y:O", axis=None)
    grey = alt.Chart(data).mark_rect().encode(
        x=x, y=y, color=alt.Color("grey:Q", scale=alt.Scale(scheme="greys", reverse=True,
                                                            domain=[0, 255]), legend=None))
    heat = alt.Chart(data).mark_rect().encode(
        x=x, y=y, color=alt.Color("saliency:Q", scale=alt.Scale(scheme="reds", domain=[0, 1]),
                                  title="saliency"),
        opacity=alt.Opacity("saliency:Q", scale=alt.Scale(domain=[0, 1], range=[0, 0.65]), legend=None))
    return _finish((grey + heat).resolve_scale(color="independent").properties(width=size, height=size),
                   title, "A face in grey with the saliency map over it in red (more red: more important).")


def saliency_panels(maps: pd.DataFrame, *, explained: str, size: int = 144, title: str = "") -> alt.TopLevelMixin:
    """One face and its saliency maps side by side (those in `maps`: disfer.models.saliency.maps_table),
    each map laid over the face with its own colour bar saying what high means.

    Grad-CAM on 0..1 (1: the strongest evidence for `explained`); Gradient SHAP signed on a
    symmetric scale, red where a pixel speaks for `explained`, blue where against. Each map is
    opaque where it is strong and clear where it is zero, so the face shows through. `size`: a
    multiple of 48 (whole screen pixels per face pixel, or the cells show seams); 144 keeps the
    three panels within a 1024-pixel-wide window."""
    peak = float(np.nanmax(np.abs(maps["gradient_shap"]))) if len(maps) and "gradient_shap" in maps else 0.0
    peak = peak if np.isfinite(peak) and peak > 0 else 1.0
    x = alt.X(field="column", type="ordinal", axis=None)
    y = alt.Y(field="row", type="ordinal", axis=None)
    grey = alt.Chart().mark_rect().encode(
        x=x, y=y, color=alt.Color(field="grey", type="quantitative", legend=None,
                                  scale=alt.Scale(scheme="greys", reverse=True, domain=[0, 255])))

    def legend(heading: list[str], values: list[float], label: str) -> alt.Legend:
        return alt.Legend(title=heading, orient="bottom", direction="horizontal", gradientLength=size - 20,
                          values=values, labelExpr=label, titleLimit=0, labelLimit=0)

    # Opacity from a copy of the value: on the same field Vega would merge the colour bar and the
    # opacity into one legend of dots.
    cam = alt.Chart().transform_calculate(strength="datum.gradcam").mark_rect().encode(
        x=x, y=y,
        color=alt.Color(field="gradcam", type="quantitative", scale=alt.Scale(scheme="yelloworangered",
                        domain=[0, 1]),
                        legend=legend(["Grad-CAM: evidence", f"for {explained}"], [0, 0.5, 1],
                                      "datum.value == 0 ? '0 none' : datum.value == 1 ? '1 strongest' "
                                      ": datum.label")),
        opacity=alt.Opacity(field="strength", type="quantitative", legend=None,
                            scale=alt.Scale(domain=[0, 1], range=[0, 0.8])),
        tooltip=[alt.Tooltip(field="row", type="ordinal"), alt.Tooltip(field="column", type="ordinal"),
                 alt.Tooltip(field="gradcam", type="quantitative", format=".2f", title="Grad-CAM")])
    shap = alt.Chart().transform_calculate(strength="abs(datum.gradient_shap)").mark_rect().encode(
        x=x, y=y,
        color=alt.Color(field="gradient_shap", type="quantitative",
                        scale=alt.Scale(scheme="redblue", reverse=True, domain=[-peak, peak]),
                        legend=legend(["Gradient SHAP: red for", f"{explained}, blue against"],
                                      [-peak, 0, peak],
                                      "datum.value > 0 ? '+' + format(datum.value, '.2f') : datum.value < 0 "
                                      "? format(datum.value, '.2f') : '0'")),
        # square-root opacity: SHAP maps are peaky, and a linear one left all but a few pixels clear
        opacity=alt.Opacity(field="strength", type="quantitative", legend=None,
                            scale=alt.Scale(type="sqrt", domain=[0, peak], range=[0, 0.85])),
        tooltip=[alt.Tooltip(field="row", type="ordinal"), alt.Tooltip(field="column", type="ordinal"),
                 alt.Tooltip(field="gradient_shap", type="quantitative", format=".3f",
                             title="Gradient SHAP (logit)")])

    def panel(heading: str, *layers):
        return alt.layer(grey, *layers).resolve_scale(color="independent", opacity="independent").properties(
            width=size, height=size, title=alt.TitleParams(heading, anchor="start", limit=0))

    # Only the maps computed (the page computes the ones asked for): a column of maps_table each.
    panels, said = [panel("face")], []
    if "gradcam" in maps:
        panels.append(panel(f"Grad-CAM ({explained})", cam))
        said.append(f"its Grad-CAM map for {explained} (0 none to 1 strongest)")
    if "gradient_shap" in maps:
        panels.append(panel(f"Gradient SHAP ({explained})", shap))
        said.append(f"its Gradient SHAP map (red: pixels that speak for {explained}, blue: against)")
    chart = alt.hconcat(*panels, data=maps, spacing=16).resolve_scale(color="independent", opacity="independent")
    return _finish(chart, title, "A face" + "".join(f", {s}" for s in said) + (", each over the face." if said else "."))


def chart_png(chart: alt.TopLevelMixin, scale: float = 2.0) -> bytes:
    """The chart as a PNG (vl-convert, no browser), for papers."""
    import vl_convert as vlc

    return vlc.vegalite_to_png(chart.to_json(), scale=scale)


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_json())
