"""Confusion: who mistakes which emotion for which (Figure 3), how alike humans' and models' errors
are (off-diagonal Pearson's r, Figure 5) and whether they fail on the same faces (Figure 4)."""

import streamlit as st

from app_common import analysed, page_header, require, show_figure, show_table, study_report
from disfer.analysis import HUMANS, offdiag_pearson
from disfer.analysis.by_condition import condition_names, confusion_matrices, confusion_panels, error_grid
from disfer.charts import confusion_grid, offdiag_points, offdiag_scatter, pair_grid

facts = page_header("Confusion", "Rows are the dataset's label, columns the answer; each row sums to 1. "
                    "Humans: every vote pooled.")
require(facts, "votes_or_predictions")

names, keys = analysed(condition_names)
pick = st.selectbox("Condition", ["all conditions", *names])
distortion, level = keys[names.index(pick)] if pick in names else (None, None)
matrices = analysed(confusion_matrices, distortion, level)
if not matrices:
    st.info("No labelled trials in this condition.")
    st.stop()
raters = list(matrices)
slug = pick.replace(" ", "_")

tab_matrix, tab_offdiag, tab_errors = st.tabs(["Confusion matrices (Figure 3)", "Off-diagonal (Figure 5)",
                                                "Error correlation and consistency (Figure 4)"])
with tab_matrix:
    distortions = list(dict.fromkeys(d for d, _ in keys if d != "original"))
    choice = st.segmented_control(
        "Panels", ["all conditions pooled", *distortions],
        default="all conditions pooled", key="confusion_panels",
        help="One column per condition: the original and each level of a distortion. "
             "Every panel shares one colour scale (0-100% of the row).")
    chosen = st.multiselect("Raters", raters, default=raters[:4])
    if not chosen:
        st.info("Choose at least one rater.")
    else:
        panel_distortion = None if choice in (None, "all conditions pooled") else choice
        long, columns = analysed(confusion_panels, panel_distortion)
        long = long[long["rater"].isin(chosen)]
        panel_slug = panel_distortion or "all_conditions"
        show_figure(f"confusion_{panel_slug}", confusion_grid, long, column_order=columns,
                    title="Confusion matrices (percent of each label's row)")
        if len(columns) > 2:
            st.caption("In a narrow window the figure scrolls sideways: each condition is a column of panels.")
        show_table(long, f"confusion_{panel_slug}")

with tab_offdiag:
    models = [r for r in raters if r != HUMANS]
    if HUMANS not in raters or not models:
        st.info("The off-diagonal comparison needs human votes and at least one model.")
    else:
        model = st.selectbox("Model", models)
        r = offdiag_pearson(matrices[HUMANS], matrices[model])
        points = offdiag_points(matrices[HUMANS], matrices[model], HUMANS, model)
        show_figure(f"offdiag_{model}_{slug}", offdiag_scatter, points, x=HUMANS, y=model, r=r)
        show_table(points, f"offdiag_{model}_{slug}")

with tab_errors:
    grid = error_grid(study_report())
    if grid.empty:
        st.info("Error correlation and consistency compare models with humans: they need votes and a model.")
    else:
        order = [n for n in names if n in set(grid["condition"])]
        show_figure("error_correlation", pair_grid, grid, a="model", b="condition",
                    value="error_correlation", order_b=order,
                    title="Error correlation with humans (off-diagonal Pearson r)")
        show_figure("error_consistency", pair_grid, grid, a="model", b="condition",
                    value="error_consistency", order_b=order,
                    title="Error consistency with the human majority (kappa)")
        show_table(grid, "error_correlation_consistency")
