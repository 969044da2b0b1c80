"""Agreement: how much the crowd agrees (P_i, Fleiss' kappa), how good each participant is, and
where a reliability-weighted consensus (Dawid-Skene) departs from the majority."""

import streamlit as st

from app_common import analysed, page_header, require, show_figure, show_table, study_report
from disfer.analysis import agreement_per_stimulus, dawid_skene_labels, participant_accuracy
from disfer.charts import accuracy_histogram, agreement_histogram, label_crosstab

facts = page_header("Agreement", "P_i: the share of agreeing pairs of raters on a stimulus. "
                    "Bands at 0.3, 0.5 and 0.9 as in the paper.")
require(facts, "votes")

humans = study_report()["humans"]
cells = st.columns(4)
cells[0].metric("Fleiss' kappa", f"{humans['fleiss_kappa']:.3f}" if humans["fleiss_kappa"] is not None else "n/a")
cells[1].metric("Mean P_i", f"{humans['mean_p_i']:.3f}" if humans["mean_p_i"] is not None else "n/a")
bins = humans["pi_bins"]
cells[2].metric("P_i > 0.9", f"{bins['gt_0_9']:,}")
cells[3].metric("P_i < 0.3", f"{bins['lt_0_3']:,}")

per_stimulus = analysed(agreement_per_stimulus)
rated = per_stimulus[per_stimulus["p_i"].notna()]
show_figure("agreement_p_i", agreement_histogram, rated["p_i"], title="agreement per stimulus")
with st.expander("P_i per stimulus"):
    show_table(rated, "agreement_per_stimulus")

st.subheader("Participants")
people = analysed(participant_accuracy)
if people.table.empty:
    st.info("No participant has voted on a labelled stimulus.")
else:
    cells = st.columns(4)
    for cell, key in zip(cells, ["mean", "median", "min", "max"], strict=True):
        cell.metric(f"{key} accuracy", f"{getattr(people, key):.1%}")
    show_figure("participant_accuracy", accuracy_histogram, people.table, title="accuracy per participant")
    with st.expander("Accuracy per participant"):
        show_table(people.table, "participant_accuracy")

st.subheader("Dawid-Skene against the majority vote")
consensus = analysed(dawid_skene_labels)
if consensus.empty:
    st.info("No voted stimuli.")
else:
    st.metric("Stimuli where they differ", f"{int(consensus['disagree'].sum()):,} of {len(consensus):,}")
    show_figure("majority_vs_dawid_skene", label_crosstab, consensus[["majority", "dawid_skene"]],
                rows="majority", columns="dawid_skene",
                title="stimuli by majority (rows) and Dawid-Skene label (columns)")
    show_table(consensus[consensus["disagree"]], "dawid_skene_disagreements")
