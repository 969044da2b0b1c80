"""Stimuli: a gallery of faces, filtered, and for one face its grid of 10 versions (the paper's
Figure 1) with the crowd's votes and every model's answer per version."""

import streamlit as st

from app_common import analysed, cached, face_image, md, page_header, require, show_table, stimulus_pixels
from disfer.analysis.by_condition import condition_name
from disfer.analysis.gallery import (
    AUDIT_STATUSES,
    filter_gallery,
    gallery_choices,
    source_versions,
    stimulus_gallery,
)

PER_PAGE = 40  # 5 rows of 8 faces at 1400 pixels, 8 rows of 5 at 1024
TILE, VERSION_TILE = 100, 148  # pixels: a face shown 96 (gallery) or 144 (versions) wide, and a margin

facts = page_header("Stimuli")
require(facts)
table = cached(stimulus_gallery, with_study=True)
choices = gallery_choices(table)

with st.sidebar:
    st.subheader("Filter stimuli")
    emotions = st.multiselect("Label", choices["label"])
    distortions = st.multiselect("Distortion", choices["distortion"])
    levels = st.multiselect("Level", choices["level"])
    lists = st.multiselect("Playlist", choices["playlist"])
    share = st.slider("Agreement (majority share)", 0.0, 1.0, (0.0, 1.0), step=0.05,
                      help="Share of votes for the most chosen emotion (stimuli without votes always pass).")
    audit = st.multiselect("Audit status", AUDIT_STATUSES)

shown = filter_gallery(table, labels=emotions, distortions=distortions, levels=levels, playlists=lists,
                       share=share, audit=audit)
st.markdown(f"**{len(shown):,}** of {len(table):,} stimuli match.")
st.caption("Under each face: its dataset label / the crowd's majority (label alone: no votes yet). "
           "Open a face to see its 10 versions below the gallery.")
if shown.empty:
    st.info("No stimulus matches these filters.")
    st.stop()
pages = (len(shown) - 1) // PER_PAGE + 1
page = st.number_input("Page", 1, pages, 1) if pages > 1 else 1
chunk = shown.iloc[(page - 1) * PER_PAGE: page * PER_PAGE]
faces = stimulus_pixels(chunk["stimulus_id"])
# Tiles of a fixed width in a row that wraps: as many a row as the window holds (8 at 1400 pixels,
# 5 at 1024), never squeezed over each other as fixed columns were.
tiles = st.container(horizontal=True, gap="small")
for row in chunk.itertuples(index=False):
    with tiles.container(width=TILE):
        said = f" / {md(row.majority)}" if isinstance(row.majority, str) else ""
        st.image(face_image(faces[row.stimulus_id], 2), width=96, caption=f"{md(row.label)}{said}")
        if st.button("open", key=f"open-{row.stimulus_id}", help=f"{md(row.stimulus_id)}: label / majority",
                     type="tertiary"):
            st.session_state["stimuli_source_id"] = int(row.source_id)

st.divider()
sources = sorted(int(s) for s in shown["source_id"].unique())
current = st.session_state.get("stimuli_source_id")
source_id = st.selectbox("Source face", sources, index=sources.index(current) if current in sources else 0,
                         help="Click a face above or choose here: its 10 versions open below.")
versions = analysed(source_versions, int(source_id))
st.subheader(f"Source {source_id}: labelled {md(versions['label'].iloc[0])}")
faces = stimulus_pixels(versions["stimulus_id"])
tiles = st.container(horizontal=True, gap="small")
for row in versions.itertuples(index=False):
    with tiles.container(width=VERSION_TILE):
        st.image(face_image(faces[row.stimulus_id], 3), caption=md(condition_name(row.distortion, row.level)),
                 width=144)
show_table(versions, f"source_{source_id}_versions")
