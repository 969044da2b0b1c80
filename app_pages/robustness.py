"""Robustness: accuracy against distortion level, one panel per distortion (the paper's Figure 2)."""

import streamlit as st

from app_common import analysed, cached, page_header, require, show_figure, show_table
from disfer.analysis import HUMANS, robustness_curve
from disfer.analysis.curves import condition_params, with_params
from disfer.analysis.overview import curated_source_count
from disfer.charts import robustness_chart

facts = page_header("Robustness", "Accuracy of the human majority and of each model at every "
                    "distortion level, with 95% bootstrap confidence bands over source faces. The x axis "
                    "shows each distortion's parameter (blur and noise sigma, salt-and-pepper probability); "
                    "the dashed line is chance (1 in 7).")
require(facts, "votes_or_predictions")

curated_available = cached(curated_source_count) > 0
labels = st.radio("Accuracy against", ["original labels", "curated labels"], horizontal=True,
                  disabled=not curated_available,
                  help=None if curated_available else "Curated labels appear once sources are curated.")
label_kind = "curated" if labels == "curated labels" else "original"

curve = with_params(analysed(robustness_curve, label_kind=label_kind), cached(condition_params))
if curve.empty:
    st.info("No rater has a labelled trial yet: import votes or run a model.")
    st.stop()
raters = list(dict.fromkeys(curve["rater"]))
chosen = st.multiselect("Raters", raters, default=raters[:6])
shown = curve[curve["rater"].isin(chosen)]
if shown.empty:
    st.info("Choose at least one rater.")
    st.stop()
if HUMANS not in raters:
    st.caption("No human votes yet: models only.")
show_figure(f"robustness_{label_kind}", robustness_chart, shown)
show_table(shown, f"robustness_{label_kind}")
