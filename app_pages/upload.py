"""Upload: the crowd's votes, a model's predictions, face images or model weights, for admins."""

import streamlit as st

from app_common import get_store, md, page_header
from app_identity import require_page
from disfer.errors import DisferError
from disfer.uploads import MAX_UPLOAD_BYTES, receive_upload, uploads_folder

actor = require_page("upload")
page_header("Upload", "Files are checked whole before anything is written: a bad row refuses the "
            f"file and names the problem. At most {MAX_UPLOAD_BYTES // 2**20} MB a file.")
votes_tab, predictions_tab, images_tab, weights_tab = st.tabs(["Votes", "Predictions", "Face images", "Weights"])


def _report(run) -> None:
    try:
        rows = run()
    except DisferError as err:
        st.error(md(str(err)))
    else:
        st.success(f"Imported {rows:,}.")


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

with images_tab:
    st.caption("A zip of <split>/<emotion>/<image> (png, jpg, ...), as `disfer ingest folder` reads a folder.")
    images = st.file_uploader("Images (zip)", type=["zip"], key="upload_images")
    if st.button("Ingest the faces", disabled=images is None, type="primary"):
        _report(lambda: receive_upload(get_store(), actor, "images", images.name, images.getvalue()))

with weights_tab:
    st.caption("Model weights as safetensors only (a pickled .pth could run code). They are kept in "
               f"{uploads_folder(get_store())}; run a model with them: "
               "`disfer predict --model FAMILY --weights FILE`.")
    weights = st.file_uploader("Weights (.safetensors)", type=["safetensors"], key="upload_weights")
    if st.button("Keep the weights", disabled=weights is None, type="primary"):
        _report(lambda: receive_upload(get_store(), actor, "weights", weights.name, weights.getvalue()))
