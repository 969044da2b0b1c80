"""Overview: the study at a glance and the paper's headline table."""

import pandas as pd
import streamlit as st

from app_common import get_store, page_header, require, show_figure, show_table, study_report
from disfer.charts import count_bars
from disfer.emotions import EMOTIONS

facts = page_header("Overview")
st.caption(f"Store: `{get_store().path}`")
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

per_emotion = pd.DataFrame({"emotion": list(facts["sources_per_emotion"]),
                            "n": list(facts["sources_per_emotion"].values())})
per_emotion = per_emotion[(per_emotion["n"] > 0) | per_emotion["emotion"].isin(EMOTIONS)]
left, right = st.columns([3, 2])
with left:
    st.subheader("Sources per emotion")
    show_figure("sources_per_emotion", count_bars, per_emotion, category="emotion",
                sort=list(per_emotion["emotion"]))
with right:
    st.subheader("Models")
    models = pd.DataFrame(facts["models"], columns=["model_id", "family", "parent_id", "predictions",
                                                    "available"])
    if models.empty:
        st.info("No models yet: `disfer models` lists them, `disfer predict --model minixception` runs one.")
    else:
        models["available"] = models["available"].map({True: "yes", False: "unavailable"}).fillna("unknown")
        models.loc[models["family"] == "external", "available"] = "predictions only"
        models["family"] = models["family"].fillna(models["model_id"])  # built-in, not run on this study
        show_table(models, "models")

st.subheader("Headline: accuracy and agreement with the labels")
if not facts["votes"] and not facts["predictions"]:
    st.info("No votes or predictions yet: import votes (`disfer votes import votes.csv`) or run a model "
            "(`disfer predict --model minixception`) to fill this table.")
    st.stop()
report = study_report()
rows = []
if report["counts"]["votes"]:
    humans = report["humans"]
    rows.append({"rater": "humans (majority vote)", "accuracy": humans["accuracy"],
                 "kappa": humans["cohen_kappa"], "fleiss_kappa": humans["fleiss_kappa"],
                 "vote_accuracy": humans["vote_accuracy"], "n": report["counts"]["voted_stimuli"]})
for model, section in report["models"].items():
    rows.append({"rater": model, "accuracy": section["accuracy"], "kappa": section["cohen_kappa"],
                 "fleiss_kappa": None, "vote_accuracy": None, "n": section["n"]})
headline = pd.DataFrame(rows, columns=["rater", "accuracy", "kappa", "fleiss_kappa", "vote_accuracy", "n"])
show_table(headline, "headline", column_config={
    "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
    "kappa": st.column_config.NumberColumn("Cohen's kappa", format="%.3f"),
    "fleiss_kappa": st.column_config.NumberColumn("Fleiss' kappa", format="%.3f"),
    "vote_accuracy": st.column_config.NumberColumn("single-vote accuracy", format="percent")})
audit = report["audit"]
st.markdown(f"**Label audit:** {audit['contradicted_stimuli']:,} stimuli whose majority contradicts the "
            f"label; {audit['all_versions_misclassified_count']:,} sources with all versions misclassified.")
