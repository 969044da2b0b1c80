"""Saliency: which pixels of a face drove a model's answer (Grad-CAM and Gradient SHAP)."""

import numpy as np
import pandas as pd
import streamlit as st

from app_common import cached, get_store, md, page_header, require, show_figure, stimulus_pixels
from disfer.analysis.gallery import label_and_majority, source_conditions, stimulus_gallery, study_sources
from disfer.analysis.overview import model_weights
from disfer.charts import saliency_panels
from disfer.emotions import EMOTIONS
from disfer.images import N_PIXELS, from_blob
from disfer.models.registry import load_model
from disfer.models.saliency import (
    explained_class,
    explanation_sentence,
    gradcam,
    gradient_shap,
    maps_npy,
    maps_table,
)

facts = page_header("Saliency", "Grad-CAM (the last convolution's evidence, upsampled) and Gradient SHAP "
                    "(pixel attributions against black and mean-grey baselines) for one face and one model.")
require(facts)


@st.cache_resource(show_spinner="Loading the model (and torch, the first time) ...", max_entries=3)
def _model(model_id: str, db_path: str, weights: str | None):
    # `weights` (the file in use) is part of the key: a replaced weights file loads afresh.
    from disfer.store import Store

    return load_model(model_id, device="cpu", store=Store(db_path))


@st.cache_data(show_spinner="Computing Grad-CAM and Gradient SHAP (32 samples) ...", max_entries=64)
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

table = cached(stimulus_gallery, with_study=True)
sources = study_sources(table)
label_of = dict(zip(sources["source_id"], sources["label"], strict=True))
ids = list(label_of)
wanted = st.session_state.get("stimuli_source_id")  # a face opened on the Stimuli page
left, right = st.columns(2)
with left:
    model_id = st.selectbox("Model", list(ready["model"]))
    source_id = st.selectbox("Source face", ids, index=ids.index(wanted) if wanted in ids else 0,
                             format_func=lambda s: f"{s}: labelled {label_of[s]}",
                             help="The study's source faces, with their dataset label.")
with right:
    conditions = source_conditions(table, source_id)
    distortion = st.selectbox("Distortion", list(conditions))
    levels = conditions[distortion]
    level = levels[0] if len(levels) == 1 else st.selectbox("Level", levels)
    target = st.selectbox("Explain", ["the model's answer", *EMOTIONS])
stimulus_id = f"{int(source_id)}-{distortion}-{level}"
pixels = stimulus_pixels([stimulus_id]).get(stimulus_id)
if pixels is None or len(pixels) != N_PIXELS:
    st.info(f"No picture of stimulus {md(stimulus_id)} in this store.")
    st.stop()

st.markdown(md(label_and_majority(table, stimulus_id)))  # before the maps: they take a while the first time
weights = ready.set_index("model").loc[model_id, "weights"]
explain = None if target == "the model's answer" else target
try:
    proba, cam, shap = _maps(model_id, str(get_store().path), weights, stimulus_id, pixels, explain)
except Exception as err:  # noqa: BLE001 - a broken weights file must not take the page down
    st.error(f"{md(model_id)} could not explain {md(stimulus_id)}: {md(err)}")
    st.stop()
face = from_blob(pixels)
_, explained = explained_class(proba, explain)
st.markdown(f"**{md(explanation_sentence(model_id, stimulus_id, proba, explain))}**")
maps = maps_table(face, cam, shap)
name = f"saliency_{stimulus_id}_{model_id}_{explained}"
show_figure(name, saliency_panels, maps, explained=explained)
row = st.container(horizontal=True, vertical_alignment="center")
# on_click="ignore": a download does not rerun the page (see app_common._draw)
row.download_button("Maps CSV", data=lambda: maps.to_csv(index=False).encode(), file_name=f"{name}.csv",
                    mime="text/csv", icon=":material/table:", on_click="ignore", key="maps-csv")
row.download_button("Maps NPY", data=lambda: maps_npy(cam, shap), file_name=f"{name}.npy",
                    mime="application/octet-stream", icon=":material/data_array:", on_click="ignore",
                    key="maps-npy")
row.caption("CSV: one row per pixel (row, column, grey, gradcam, gradient_shap). NPY: float32 "
            "(2, 48, 48), Grad-CAM then Gradient SHAP; `numpy.load` reads it without pickle.")
st.bar_chart(pd.DataFrame({"probability": proba}, index=list(EMOTIONS)), horizontal=True, height=220)
