"""Overview: the study at a glance and the paper's headline table."""

import streamlit as st

from app_common import get_store, md, page_header, require, show_figure, show_table, study_report
from disfer.analysis.overview import emotion_counts, headline_table, model_status
from disfer.charts import count_bars

facts = page_header("Overview")
st.caption(f"Store: {md(get_store().path)}")
if facts["study_kind"] == "demo":
    st.markdown("**Data:** the offline demo study (synthetic faces and a simulated crowd; the model outputs are real predictions of the models on those faces).")
elif facts["stimuli"]:
    st.markdown("**Data:** a real study.")
require(facts)

cells = st.columns(6)
for cell, (label, key) in zip(cells, [("Sources", "sources"), ("Stimuli", "stimuli"), ("Playlists", "playlists"),
                                     ("Participants", "participants"), ("Votes", "votes")], strict=False):
    cell.metric(label, f"{facts[key]:,}")
cells[5].metric("Models", f"{sum(1 for m in facts['models'] if m['predictions']):,}",
                help="models with predictions on this study")

per_emotion = emotion_counts(facts)
left, right = st.columns([3, 2])
with left:
    st.subheader("Sources per emotion")
    show_figure("sources_per_emotion", count_bars, per_emotion, category="emotion",
                sort=list(per_emotion["emotion"]))
with right:
    st.subheader("Models")
    models = model_status(facts)
    if models.empty:
        st.info("No models yet: `disfer models` lists them, `disfer predict --model minixception` runs one.")
    else:
        show_table(models, "models")

st.subheader("Headline: accuracy and agreement with the labels")
if not facts["votes"] and not facts["predictions"]:
    st.info("No votes or predictions yet: import votes (`disfer votes import votes.csv`) or run a model "
            "(`disfer predict --model minixception`) to fill this table.")
    st.stop()
report = study_report()
headline = headline_table(report)
show_table(headline, "headline", column_config={
    "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
    "kappa": st.column_config.NumberColumn("Cohen's kappa", format="%.3f"),
    "fleiss_kappa": st.column_config.NumberColumn("Fleiss' kappa", format="%.3f"),
    "vote_accuracy": st.column_config.NumberColumn("single-vote accuracy", format="percent")})
audit = report["audit"]
st.markdown(f"**Label audit:** {audit['contradicted_stimuli']:,} stimuli whose majority contradicts the "
            f"label; {audit['all_versions_misclassified_count']:,} sources with all versions misclassified.")
