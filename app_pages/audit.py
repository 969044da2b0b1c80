"""Label audit: where the crowd's majority contradicts the FER-2013 label (the paper's Figure 6).

Sources whose every version the majority gets wrong come first, in the review ranking's order (the
curation queue's); then stimuli ranked by how strongly the majority disagrees. Each source links to
the curation page.
"""

import streamlit as st

from app_common import analysed, face_image, md, page_header, require, show_table, stimulus_pixels
from disfer.analysis import label_audit

facts = page_header("Label audit")
require(facts, "votes")
audit = analysed(label_audit)


def curate(source_id: int) -> None:
    st.session_state["curation_source_id"] = int(source_id)
    st.switch_page("app_pages/curation.py")  # relative to the router, as st.navigation registered it


sources = audit.all_versions_misclassified
cells = st.columns(2)
cells[0].metric("Sources with all versions misclassified", f"{len(sources):,}")
cells[1].metric("Stimuli whose majority contradicts the label", f"{len(audit.contradicted):,}")

st.subheader("All versions misclassified, in review order")
st.caption("The curation queue's order: sources with more voted versions first, then the strongest "
           "contradiction (the majority's vote share above the label's, on average over the versions).")
if sources.empty:
    st.info("No source has every version misclassified by the crowd's majority.")
else:
    shown = sources.head(24)
    faces = stimulus_pixels([f"{s}-original-0" for s in shown["source_id"]])
    columns = st.columns(6)
    for i, row in enumerate(shown.itertuples(index=False)):
        with columns[i % 6]:
            pixels = faces.get(f"{row.source_id}-original-0")
            if pixels is not None:
                st.image(face_image(pixels, 2), width=96)
            majorities = ", ".join(row.majorities or [])
            st.caption(f"#{row.source_id}: labelled **{md(row.label)}** ({row.label_share:.0%} of votes), "
                       f"crowd says {md(majorities)}")
            if st.button("Curate", key=f"curate-{row.source_id}"):
                curate(row.source_id)
    if len(sources) > len(shown):
        st.caption(f"{len(sources) - len(shown):,} more in the table below.")
    show_table(sources.assign(majorities=sources["majorities"].map(lambda m: ", ".join(m or []))),
               "all_versions_misclassified")

st.subheader("Contradicted stimuli, strongest first")
table = audit.contradicted
if table.empty:
    st.info("The crowd's majority agrees with the label on every voted stimulus.")
else:
    show_table(table, "contradicted_stimuli", column_config={
        "majority_share": st.column_config.ProgressColumn("majority share", min_value=0, max_value=1,
                                                          format="percent"),
        "label_share": st.column_config.NumberColumn("label share", format="percent")})
    pick = st.selectbox("Open a source in curation", sorted(set(table["source_id"])), index=None,
                        placeholder="source id")
    if pick is not None and st.button("Curate this source"):
        curate(pick)
