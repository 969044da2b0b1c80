"""Stimuli: a gallery of faces, filtered, and for one face its grid of 10 versions (the paper's
Figure 1) with the crowd's votes and every model's answer per version."""

import pandas as pd
import streamlit as st

from app_common import (
    analysed,
    cached,
    face_image,
    page_header,
    playlists_of,
    require,
    show_table,
    stimulus_pixels,
    study_for,
)
from disfer.analysis import majority_vote
from disfer.data.distortions import DISTORTION_ORDER
from disfer.emotions import EMOTIONS

PER_PAGE = 36
AUDIT_STATUSES = ("agrees with label", "contradicts label", "no votes")

facts = page_header("Stimuli")
require(facts)


def _versions(study, source_id: int) -> pd.DataFrame:
    """One row per version of a source: its votes per emotion and each model's answer."""
    rows = study.stimuli.index[study.stimuli["source_id"] == source_id]
    out = study.stimuli.loc[rows, ["stimulus_id", "distortion", "level", "label"]].reset_index(drop=True)
    counts = pd.DataFrame(study.counts[rows], columns=list(EMOTIONS))
    out["votes"] = [", ".join(f"{e} {n}" for e, n in c.items() if n) for _, c in counts.iterrows()]
    for m, model in enumerate(study.models):
        out[model] = [EMOTIONS[p] if p >= 0 else None for p in study.model_pred[m, rows]]
    return out


def _gallery_rows(store) -> pd.DataFrame:
    """The human majority per stimulus with its playlist and audit status (once per store change)."""
    table = majority_vote(study_for(store)).merge(playlists_of(store), on="stimulus_id", how="left")
    table["audit"] = table["correct"].map({True: AUDIT_STATUSES[0], False: AUDIT_STATUSES[1]}).fillna(
        AUDIT_STATUSES[2])
    return table


table = cached(_gallery_rows)

with st.sidebar:
    st.subheader("Filter stimuli")
    present = {c: set(table[c].dropna().unique()) for c in ("label", "distortion", "level")}
    emotions = st.multiselect("Label", [e for e in EMOTIONS if e in present["label"]])
    distortions = st.multiselect("Distortion", [d for d in DISTORTION_ORDER if d in present["distortion"]])
    levels = st.multiselect("Level", sorted(int(lv) for lv in present["level"]))
    lists = st.multiselect("Playlist", sorted(int(p) for p in table["playlist_id"].dropna().unique()))
    share = st.slider("Agreement (majority share)", 0.0, 1.0, (0.0, 1.0), step=0.05,
                      help="Share of votes for the most chosen emotion (stimuli without votes always pass).")
    audit = st.multiselect("Audit status", AUDIT_STATUSES)

shown = table
if emotions:
    shown = shown[shown["label"].isin(emotions)]
if distortions:
    shown = shown[shown["distortion"].isin(distortions)]
if levels:
    shown = shown[shown["level"].isin(levels)]
if lists:
    shown = shown[shown["playlist_id"].isin(lists)]
if share != (0.0, 1.0):
    s = shown["majority_share"]
    shown = shown[s.isna() | s.between(*share)]
if audit:
    shown = shown[shown["audit"].isin(audit)]

st.markdown(f"**{len(shown):,}** of {len(table):,} stimuli match.")
if shown.empty:
    st.info("No stimulus matches these filters.")
    st.stop()
pages = (len(shown) - 1) // PER_PAGE + 1
page = st.number_input("Page", 1, pages, 1) if pages > 1 else 1
chunk = shown.iloc[(page - 1) * PER_PAGE: page * PER_PAGE]
faces = stimulus_pixels(chunk["stimulus_id"])
columns = st.columns(9)
for i, row in enumerate(chunk.itertuples(index=False)):
    with columns[i % 9]:
        said = f" / {row.majority}" if isinstance(row.majority, str) else ""
        st.image(face_image(faces[row.stimulus_id], 2), width=96, caption=f"{row.label}{said}")
        if st.button("open", key=f"open-{row.stimulus_id}", help=f"{row.stimulus_id}: label / majority",
                     type="tertiary"):
            st.session_state["stimuli_source_id"] = int(row.source_id)

st.divider()
sources = sorted(int(s) for s in shown["source_id"].unique())
current = st.session_state.get("stimuli_source_id")
source_id = st.selectbox("Source face", sources, index=sources.index(current) if current in sources else 0,
                         help="Click a face above or choose here: its 10 versions open below.")
versions = analysed(_versions, int(source_id))
st.subheader(f"Source {source_id}: labelled {versions['label'].iloc[0]}")
faces = stimulus_pixels(versions["stimulus_id"])
columns = st.columns(5)
for i, row in enumerate(versions.itertuples(index=False)):
    with columns[i % 5]:
        name = "original" if row.distortion == "original" else f"{row.distortion} {row.level}"
        st.image(face_image(faces[row.stimulus_id], 3), caption=name, width=144)
show_table(versions, f"source_{source_id}_versions")
