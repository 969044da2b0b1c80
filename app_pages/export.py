"""Export: write the curated dataset (FER-2013 CSV, FERPlus-style CSV, image folders or Parquet) with
its manifest and dataset card. The same as `disfer export`.

Exports go into one folder, the export root ($DISFER_EXPORT_ROOT, else `exports/` beside the store):
the user names a folder in it (a name, never a path, so the page cannot write elsewhere on the
server), and "Replace" replaces only a previous export of ours, as `--force` does.
"""

import streamlit as st

from app_common import EXPORT_ROOT_ENV, cached, export_root, get_store, md, page_header, require
from app_identity import require_page
from disfer import ledger
from disfer.curation.export import DEFAULT_STATUSES, FORMATS, WRITERS, curated_status_counts, export_dataset
from disfer.errors import DisferError
from disfer.outfiles import output_folder, safe_name

actor = require_page("export")

facts = page_header("Export", "The curated, relabeled dataset. Exports are deterministic: the same "
                    "store gives the same bytes (the card's date is the latest curation event).")
require(facts)
store = get_store()
root = export_root(store)

counts = cached(curated_status_counts)
for cell, (name, n) in zip(st.columns(len(counts)), counts.items(), strict=True):
    cell.metric(name.capitalize(), f"{n:,}")

fmt = st.selectbox("Format", FORMATS, key="export_format", format_func=lambda f: f)
st.caption(WRITERS[fmt].description)
statuses = st.multiselect("Statuses to export ('uncurated' keeps the original label)",
                          ledger.VIEW_STATUSES, default=list(DEFAULT_STATUSES), key="export_statuses")
include_distorted = st.checkbox("Include the distorted versions", key="export_distorted")
# The suggested name follows the format until the user types their own.
if st.session_state.get("export_name") in (None, st.session_state.get("export_name_suggested")):
    st.session_state["export_name"] = fmt
st.session_state["export_name_suggested"] = fmt
name = st.text_input("Folder name (new, empty, or a previous export to replace)", key="export_name",
                     help="A name, not a path: letters, digits and . _ + -")
st.caption(f"Made in the export root {md(root)} (the setting {md(EXPORT_ROOT_ENV)}, else exports "
           "beside the store).")
force = st.checkbox("Replace a previous export in this folder", key="export_force",
                    help="Only a folder holding exactly an earlier export (every file its manifest "
                         "lists, unchanged, and nothing else) is replaced; anything else is refused.")

if st.button("Export", type="primary", icon=":material/download:"):
    bar = st.progress(0.0, text="exporting ...")
    try:
        out = root / safe_name(name.strip(), "folder name")
        output_folder(root, "export root")
        manifest = export_dataset(store, fmt, out, include_distorted=include_distorted, statuses=statuses,
                                  force=force, progress=lambda f, text: bar.progress(f, text=text),
                                  actor=actor)
    except DisferError as err:
        bar.empty()
        st.error(md(err))
        st.stop()
    bar.empty()
    st.success(f"Wrote {manifest['rows']:,} rows to {md(out)}")
    # Our own Markdown: every stored text in it is escaped (disfer.curation.export._card).
    st.markdown((out / "dataset_card.md").read_text(encoding="utf-8"))
    with st.expander("manifest.json"):
        st.json(manifest)
    main_file = WRITERS[fmt].main_file
    if main_file:
        st.download_button(f"Download {main_file}", data=(out / main_file).read_bytes(), file_name=main_file)
