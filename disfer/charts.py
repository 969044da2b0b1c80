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


def robustness_chart(curve: pd.DataFrame, *, value: str = "accuracy", low: str = "ci_low",
                     high: str = "ci_high", rater: str = "rater", columns: int = 3) -> alt.Chart:
    """Accuracy against distortion level, one panel per distortion (the paper's Figure 2).

    `curve`: one row per (rater, distortion, level) with `value` and, when present, the
    confidence bounds `low`/`high` drawn as a band. Rows of the `original` distortion are drawn as
    level 0 of every panel, so each curve starts from the undistorted accuracy.
    """
    data = curve.copy()
    panels = [d for d in _distortions_in(data["distortion"]) if d != "original"]
    if "original" in set(data["distortion"]) and panels:
        base = data[data["distortion"] == "original"]
        data = pd.concat([data[data["distortion"] != "original"]]
                         + [base.assign(distortion=d, level=0) for d in panels], ignore_index=True)
    elif not panels:
        panels = ["original"]
    colour = alt.Color(f"{rater}:N", title="rater", scale=_rater_colour(list(data[rater].unique())))
    x = alt.X("level:O", title="distortion level")
    y_scale = alt.Scale(domain=[0, 1])
    line = alt.Chart().mark_line(point=True).encode(
        x=x, y=alt.Y(f"{value}:Q", title=value, scale=y_scale), color=colour,
        tooltip=[rater, "distortion", "level", alt.Tooltip(f"{value}:Q", format=".3f")])
    layers = [line]
    if low in data.columns and high in data.columns:
        band = alt.Chart().mark_area(opacity=0.18).encode(
            x=x, y=alt.Y(f"{low}:Q", scale=y_scale), y2=f"{high}:Q", color=colour)
        layers.insert(0, band)
    return alt.layer(*layers, data=data).properties(width=220, height=200).facet(
        facet=alt.Facet("distortion:N", sort=panels, title=None), columns=columns)


def confusion_heatmap(matrix: pd.DataFrame, *, title: str = "", fmt: str = ".2f",
                      label: str = "label", predicted: str = "predicted") -> alt.Chart:
    """A confusion matrix as a heat map (the paper's Figure 3): rows = true label, columns = answer.

    `matrix`: square, index = true label, columns = predicted label, values as given (counts or
    row proportions). Emotions keep the canonical order.
    """
    long = matrix.rename_axis(index=label, columns=predicted).stack().rename("value").reset_index()
    order = [e for e in EMOTIONS if e in set(long[label]) | set(long[predicted])]
    order += sorted((set(long[label]) | set(long[predicted])) - set(order))
    top = float(long["value"].max()) if len(long) else 1.0
    base = alt.Chart(long).encode(
        x=alt.X(f"{predicted}:N", sort=order, title=predicted, axis=alt.Axis(labelAngle=-40, labelOverlap=False)),
        y=alt.Y(f"{label}:N", sort=order, title=label, axis=alt.Axis(labelOverlap=False)))
    cells = base.mark_rect().encode(
        color=alt.Color("value:Q", scale=alt.Scale(scheme="blues", domain=[0, top or 1]), title=None),
        tooltip=[label, predicted, alt.Tooltip("value:Q", format=fmt)])
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("value:Q", format=fmt),
        color=alt.condition(alt.datum.value > top / 2, alt.value("white"), alt.value("black")))
    return (cells + text).properties(width=330, height=330, title=title)


def offdiag_scatter(points: pd.DataFrame, *, x: str, y: str, r: float | None = None,
                    title: str = "") -> alt.Chart:
    """Off-diagonal confusion entries of two raters against each other (the paper's Figure 5).

    `points`: one row per (label, predicted) pair off the diagonal, with the two raters' rates in
    columns `x` and `y`; `r` (Pearson's r, computed by the analysis layer) goes in the title.
    """
    heading = title or f"{y} against {x}"
    if r is not None and np.isfinite(r):
        heading += f" (Pearson r = {r:.2f})"
    top = float(max(points[x].max(), points[y].max(), 0.01)) if len(points) else 1.0
    diagonal = alt.Chart(pd.DataFrame({x: [0, top], y: [0, top]})).mark_line(
        color="#999999", strokeDash=[4, 4]).encode(x=f"{x}:Q", y=f"{y}:Q")
    tips = [c for c in points.columns if points[c].dtype == object][:2] + [
        alt.Tooltip(f"{x}:Q", format=".3f"), alt.Tooltip(f"{y}:Q", format=".3f")]
    dots = alt.Chart(points).mark_circle(size=60, opacity=0.7).encode(
        x=alt.X(f"{x}:Q", title=x), y=alt.Y(f"{y}:Q", title=y), tooltip=tips)
    return (diagonal + dots).properties(width=300, height=300, title=heading)


def pair_grid(pairs: pd.DataFrame, *, a: str = "rater_a", b: str = "rater_b", value: str = "value",
              title: str = "", fmt: str = ".2f", domain: tuple[float, float] = (-1.0, 1.0),
              order_b: Sequence[str] | None = None) -> alt.Chart:
    """A grid of one value per (a, b) pair: rater by rater, or model by condition (the paper's
    Figure 4: error correlation and error consistency). Humans come first on either axis."""
    def order(values):
        seen = list(dict.fromkeys(values))
        return ([HUMANS] if HUMANS in seen else []) + [v for v in seen if v != HUMANS]

    rows_a = order(pairs[a])
    cols_b = list(order_b) if order_b is not None else order(pairs[b])
    base = alt.Chart(pairs).encode(x=alt.X(f"{b}:N", sort=cols_b, title=None),
                                   y=alt.Y(f"{a}:N", sort=rows_a, title=None))
    cells = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="redblue", domain=list(domain),
                                                      reverse=True), title=value),
        tooltip=[a, b, alt.Tooltip(f"{value}:Q", format=fmt)])
    text = base.mark_text(fontSize=10).encode(text=alt.Text(f"{value}:Q", format=fmt))
    return (cells + text).properties(width=max(48 * len(cols_b), 120), height=max(28 * len(rows_a), 60),
                                     title=title)


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
    return (shade + bars + rules).properties(width=520, height=240, title=title)


def accuracy_histogram(values: pd.DataFrame, *, column: str = "accuracy", title: str = "") -> alt.Chart:
    """How many participants reach each accuracy (per-participant accuracy)."""
    return alt.Chart(_binned(values[column], 20)).mark_rect(color="#4c78a8", stroke="white", strokeWidth=0.5).encode(
        x=alt.X("start:Q", title=column, scale=alt.Scale(domain=[0, 1])), x2="end:Q",
        y=alt.Y("n:Q", title="participants"), y2=alt.datum(0), tooltip=["start", "end", "n"],
    ).properties(width=520, height=220, title=title)


def label_crosstab(frame: pd.DataFrame, *, rows: str, columns: str, title: str = "") -> alt.Chart:
    """How many items got each (rows, columns) pair of labels, e.g. majority against Dawid-Skene."""
    pairs = frame.groupby([rows, columns]).size().rename("n").reset_index()
    order = [e for e in EMOTIONS if e in set(pairs[rows]) | set(pairs[columns])]
    base = alt.Chart(pairs).encode(x=alt.X(f"{columns}:N", sort=order), y=alt.Y(f"{rows}:N", sort=order))
    cells = base.mark_rect().encode(color=alt.Color("n:Q", scale=alt.Scale(scheme="blues", type="log"),
                                                    title="items"), tooltip=[rows, columns, "n"])
    return (cells + base.mark_text(fontSize=10).encode(text="n:Q")).properties(
        width=300, height=300, title=title)


def count_bars(counts: pd.DataFrame, *, category: str, value: str = "n", title: str = "",
               sort: Sequence[str] | None = None) -> alt.Chart:
    """Counts per category (sources per emotion, votes per playlist, ...)."""
    order = list(sort) if sort is not None else None
    bars = alt.Chart(counts).mark_bar(color="#4c78a8").encode(
        x=alt.X(f"{category}:N", sort=order, title=None), y=alt.Y(f"{value}:Q", title=value),
        tooltip=[category, value])
    text = bars.mark_text(dy=-6).encode(text=f"{value}:Q")
    return (bars + text).properties(width=420, height=220, title=title)


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
    return (grey + heat).resolve_scale(color="independent").properties(
        width=size, height=size, title=title)


def chart_png(chart: alt.TopLevelMixin, scale: float = 2.0) -> bytes:
    """The chart as a PNG (vl-convert, no browser), for papers."""
    import vl_convert as vlc

    return vlc.vegalite_to_png(chart.to_json(), scale=scale)


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_json())
