"""Export: write the curated dataset (FER-2013 CSV, FERPlus-style CSV, image folders or Parquet) with
its manifest and dataset card. The same as `disfer export`."""

from pathlib import Path

import streamlit as st

from app_common import cached, get_store, page_header, require
from app_identity import require_page
from disfer import ledger
from disfer.curation.export import DEFAULT_STATUSES, FORMATS, WRITERS, curated_status_counts, export_dataset
from disfer.errors import DisferError

require_page("export")

facts = page_header("Export", "The curated, relabeled dataset. Exports are deterministic: the same "
                    "store gives the same bytes (the card's date is the latest curation event).")
require(facts)
store = get_store()

counts = cached(curated_status_counts)
for cell, (name, n) in zip(st.columns(len(counts)), counts.items(), strict=True):
    cell.metric(name.capitalize(), f"{n:,}")

fmt = st.selectbox("Format", FORMATS, key="export_format", format_func=lambda f: f)
st.caption(WRITERS[fmt].description)
statuses = st.multiselect("Statuses to export ('uncurated' keeps the original label)",
                          ledger.VIEW_STATUSES, default=list(DEFAULT_STATUSES), key="export_statuses")
include_distorted = st.checkbox("Include the distorted versions", key="export_distorted")
# The suggested folder follows the format until the user types their own.
suggested = str(Path(store.path).parent / "exports" / fmt)
if st.session_state.get("export_out") in (None, st.session_state.get("export_out_suggested")):
    st.session_state["export_out"] = suggested
st.session_state["export_out_suggested"] = suggested
out = st.text_input("Output folder (new or empty)", key="export_out")
force = st.checkbox("Replace a previous export in this folder", key="export_force")

if st.button("Export", type="primary", icon=":material/download:"):
    bar = st.progress(0.0, text="exporting ...")
    try:
        manifest = export_dataset(store, fmt, out, include_distorted=include_distorted, statuses=statuses,
                                  force=force, progress=lambda f, text: bar.progress(f, text=text))
    except DisferError as err:
        bar.empty()
        st.error(str(err))
        st.stop()
    bar.empty()
    st.success(f"Wrote {manifest['rows']:,} rows to {out}")
    card = (Path(out) / "dataset_card.md").read_text(encoding="utf-8")
    st.markdown(card)
    with st.expander("manifest.json"):
        st.json(manifest)
    main_file = WRITERS[fmt].main_file
    if main_file:
        st.download_button(f"Download {main_file}", data=(Path(out) / main_file).read_bytes(),
                           file_name=main_file)
