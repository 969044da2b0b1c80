"""Saliency: which pixels of a face drove a model's answer (Grad-CAM and Gradient SHAP)."""

import numpy as np
import pandas as pd
import streamlit as st

from app_common import (
    cached,
    face_image,
    get_store,
    md,
    page_header,
    require,
    saliency_image,
    stimulus_pixels,
)
from disfer.analysis.overview import model_weights
from disfer.data.distortions import DISTORTION_ORDER
from disfer.emotions import EMOTIONS
from disfer.images import N_PIXELS, from_blob
from disfer.models.registry import load_model
from disfer.models.saliency import gradcam, gradient_shap

facts = page_header("Saliency", "Grad-CAM (the last convolution's evidence, upsampled) and Gradient SHAP "
                    "(pixel attributions against blurred baselines) for one face and one model.")
require(facts)


@st.cache_resource(show_spinner="Loading the model ...", max_entries=3)
def _model(model_id: str, db_path: str, weights: str | None):
    # `weights` (the file in use) is part of the key: a replaced weights file loads afresh.
    from disfer.store import Store

    return load_model(model_id, device="cpu", store=Store(db_path))


@st.cache_data(show_spinner="Computing the maps ...", max_entries=64)
def _maps(model_id: str, db_path: str, weights: str | None, stimulus_id: str, pixels: bytes,
          target: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    model = _model(model_id, db_path, weights)
    face = from_blob(pixels)
    idx = None if target is None else EMOTIONS.index(target)
    proba = model.predict_proba(face[None])[0]
    return proba, gradcam(model, face, target=idx), gradient_shap(model, face, target=idx)


models = cached(model_weights)
with st.expander("Models", expanded=not models["available"].any()):
    st.dataframe(models.assign(available=models["available"].map({True: "yes", False: "unavailable"})),
                 hide_index=True)
ready = models[models["available"]]
if ready.empty:
    st.info("No model has its weights here, so no saliency map can be computed. `disfer models` says "
            "where each weights file goes.")
    st.stop()

left, right = st.columns(2)
with left:
    model_id = st.selectbox("Model", list(ready["model"]))
    source_id = st.number_input("Source id", min_value=1, value=int(st.session_state.get("stimuli_source_id", 1)))
with right:
    distortion = st.selectbox("Distortion", DISTORTION_ORDER)
    level = 0 if distortion == "original" else st.selectbox("Level", [1, 2, 3])
    target = st.selectbox("Explain", ["the model's answer", *EMOTIONS])
stimulus_id = f"{int(source_id)}-{distortion}-{level}"
pixels = stimulus_pixels([stimulus_id]).get(stimulus_id)
if pixels is None or len(pixels) != N_PIXELS:
    st.info(f"No picture of stimulus {md(stimulus_id)} in this store.")
    st.stop()

weights = ready.set_index("model").loc[model_id, "weights"]
try:
    proba, cam, shap = _maps(model_id, str(get_store().path), weights, stimulus_id, pixels,
                             None if target == "the model's answer" else target)
except Exception as err:  # noqa: BLE001 - a broken weights file must not take the page down
    st.error(f"{md(model_id)} could not explain {md(stimulus_id)}: {md(err)}")
    st.stop()
face = from_blob(pixels)
answer = EMOTIONS[int(np.argmax(proba))]
st.markdown(f"**{md(model_id)}** answers **{answer}** ({proba.max():.0%}) on {md(stimulus_id)}.")
cells = st.columns(3)
cells[0].image(face_image(face, 5), caption="face", width=240)
cells[1].image(saliency_image(face, cam), caption="Grad-CAM", width=240)
cells[2].image(saliency_image(face, np.abs(shap)), caption="Gradient SHAP (|attribution|)", width=240)
st.bar_chart(pd.DataFrame({"probability": proba}, index=list(EMOTIONS)), horizontal=True, height=220)
