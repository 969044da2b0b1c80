"""Upload: the crowd's votes or a model's predictions, from a file, for admins of a hosted study."""

import streamlit as st

from app_common import get_store, md, page_header
from app_identity import require_page
from disfer.errors import DisferError
from disfer.uploads import MAX_UPLOAD_BYTES, receive_upload

actor = require_page("upload")
page_header("Upload", "Files are checked whole before anything is written: a bad row refuses the "
            f"file and names the problem. At most {MAX_UPLOAD_BYTES // 2**20} MB a file.")
votes_tab, predictions_tab = st.tabs(["Votes", "Predictions"])


def _report(run) -> None:
    try:
        rows = run()
    except DisferError as err:
        st.error(md(str(err)))
    else:
        st.success(f"Imported {rows:,} rows.")


with votes_tab:
    st.caption("participant_id, stimulus_id, emotion[, rt_ms][, answered_at][, attributes...]")
    votes = st.file_uploader("Votes CSV", type=["csv"], key="upload_votes")
    people = st.file_uploader("Participants CSV (optional)", type=["csv"], key="upload_participants")
    if st.button("Import the votes", disabled=votes is None, type="primary"):
        _report(lambda: receive_upload(get_store(), actor, "votes", votes.name, votes.getvalue(),
                                       participants=people.getvalue() if people else None))

with predictions_tab:
    st.caption("stimulus_id plus the seven probability columns, or one emotion column")
    predictions = st.file_uploader("Predictions CSV", type=["csv"], key="upload_predictions")
    model_id = st.text_input("Model name", key="upload_model")
    if st.button("Import the predictions", disabled=predictions is None or not model_id.strip(), type="primary"):
        _report(lambda: receive_upload(get_store(), actor, "predictions", predictions.name,
                                       predictions.getvalue(), model_id=model_id.strip()))
