"""Overview: the study at a glance, the paper's headline table and McNemar's tests."""

import streamlit as st

from app_common import get_store, md, page_header, require, show_figure, show_table, study_report
from disfer.analysis.overview import (
    emotion_counts,
    headline_display,
    headline_table,
    mcnemar_table,
    model_counts,
    model_status,
)
from disfer.analysis.report import audit_sentence
from disfer.charts import count_bars

facts = page_header("Overview")
st.caption(f"Store: {md(get_store().path)}")
if facts["study_kind"] == "demo":
    st.markdown("**Data:** the offline demo study (synthetic faces and a simulated crowd; the model outputs are real predictions of the models on those faces).")
elif facts["stimuli"]:
    st.markdown("**Data:** a real study.")
require(facts)

counts = model_counts(facts)
in_study = facts.get("study_sources") or facts["sources"]
# A row that wraps, each figure as wide as its text: six fixed columns cut "42,000" at 1024 pixels
# (and would cut a FERPlus-scale "3,588,700" at any width).
row = st.container(horizontal=True, horizontal_alignment="distribute", gap="medium")
row.metric("Study faces", f"{in_study:,}", width="content",
           help=f"source faces built into the study's stimuli ({facts['sources']:,} ingested)")
for label, key in [("Stimuli", "stimuli"), ("Playlists", "playlists"), ("Participants", "participants"),
                   ("Votes", "votes")]:
    row.metric(label, f"{facts[key]:,}", width="content")
row.metric("Models run", f"{counts['run']:,} of {counts['registered']:,}", width="content",
           help=f"{counts['run']:,} models have predictions on this study; {counts['available']:,} have "
                f"their weights here; {counts['registered']:,} are registered (the table below)")

st.subheader("Study faces per emotion")
per_emotion = emotion_counts(facts)
st.caption(f"The {in_study:,} source faces of the study by their dataset label"
           + (f" ({facts['sources']:,} faces ingested in all)." if facts["sources"] != in_study else "."))
show_figure("sources_per_emotion", count_bars, per_emotion, category="emotion",
            sort=list(per_emotion["emotion"]), title="study faces per emotion")

st.subheader("Headline: accuracy and agreement with the labels")
if not facts["votes"] and not facts["predictions"]:
    st.info("No votes yet and no model predictions: nothing is measured. Import votes "
            "(`disfer votes import votes.csv`) or run a model (`disfer predict --model minixception`) "
            "to fill this table.")
else:
    report = study_report()
    headline = headline_table(report)
    show_table(headline_display(headline), "headline", csv=headline)
    if not facts["votes"]:
        st.caption("No votes yet: the human rows and the label audit are not measured.")
    st.markdown(f"**{md(audit_sentence(report['audit']))}**")

    st.subheader("McNemar's test: who is right on which stimuli")
    st.caption("Each model against the human majority, each fine-tuned variant against its parent, on the "
               "stimuli both judged: how often both are right, only one is, or neither. A small p says the "
               "two differ in accuracy by more than chance.")
    tests = mcnemar_table(report)
    if tests.empty:
        st.info("No comparison yet: McNemar needs votes and a model, or a fine-tuned variant and its parent.")
    else:
        show_table(tests.drop(columns=["a", "b"]), "mcnemar", csv=tests, column_config={
            "p_value": st.column_config.NumberColumn("p", format="%.2g"),
            "statistic": st.column_config.NumberColumn("statistic", format="%.2f")})

st.subheader("Models")
models = model_status(facts)
if models.empty:
    st.info("No models yet: `disfer models` lists them, `disfer predict --model minixception` runs one.")
else:
    show_table(models, "models", width="stretch")
