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
    METHODS,
    SHAP_SAMPLE_CHOICES,
    SHAP_SAMPLES,
    explained_class,
    explanation_sentence,
    gradcam,
    gradient_shap,
    maps_npy,
    maps_npy_layout,
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


# One cache entry per (stimulus, model, class, method[, samples]): changing the class or a method
# computes only what is new, and going back to a face already seen is instant. `weights` (the file
# in use) is in every key, so a replaced weights file never shows old maps.
@st.cache_data(show_spinner=False, max_entries=256)
def _proba(model_id: str, db_path: str, weights: str | None, stimulus_id: str, pixels: bytes) -> np.ndarray:
    return _model(model_id, db_path, weights).predict_proba(from_blob(pixels)[None])[0]


@st.cache_data(show_spinner="Computing Grad-CAM ...", max_entries=256)
def _gradcam(model_id: str, db_path: str, weights: str | None, stimulus_id: str, pixels: bytes,
             target: str) -> np.ndarray:
    return gradcam(_model(model_id, db_path, weights), from_blob(pixels), target=target)


@st.cache_data(show_spinner="Computing Gradient SHAP ...", max_entries=256)
def _gradient_shap(model_id: str, db_path: str, weights: str | None, stimulus_id: str, pixels: bytes,
                   target: str, n_samples: int) -> np.ndarray:
    return gradient_shap(_model(model_id, db_path, weights), from_blob(pixels), target=target,
                         n_samples=n_samples)


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
left, right = st.columns(2)
with left:
    chosen = st.pills("Maps", list(METHODS), default=list(METHODS), selection_mode="multi",
                      format_func=METHODS.get, key="saliency_methods",
                      help="Only the maps chosen are computed.")
with right:
    samples = SHAP_SAMPLES
    if "gradient_shap" in chosen:
        samples = st.select_slider("Gradient SHAP samples", SHAP_SAMPLE_CHOICES, value=SHAP_SAMPLES,
                                   key="saliency_samples",
                                   help=f"{SHAP_SAMPLES} is fast; more samples give a smoother map and take "
                                        "longer (about linearly).")
stimulus_id = f"{int(source_id)}-{distortion}-{level}"
pixels = stimulus_pixels([stimulus_id]).get(stimulus_id)
if pixels is None or len(pixels) != N_PIXELS:
    st.info(f"No picture of stimulus {md(stimulus_id)} in this store.")
    st.stop()

st.markdown(md(label_and_majority(table, stimulus_id)))  # before the maps: they take a while the first time
weights = ready.set_index("model").loc[model_id, "weights"]
explain = None if target == "the model's answer" else target
db_path = str(get_store().path)
try:
    proba = _proba(model_id, db_path, weights, stimulus_id, pixels)
    _, explained = explained_class(proba, explain)
    # Keyed by the class explained (not "the answer"), so both routes to a class share one entry.
    cam = _gradcam(model_id, db_path, weights, stimulus_id, pixels, explained) if "gradcam" in chosen else None
    shap = (_gradient_shap(model_id, db_path, weights, stimulus_id, pixels, explained, samples)
            if "gradient_shap" in chosen else None)
except Exception as err:  # noqa: BLE001 - a broken weights file must not take the page down
    st.error(f"{md(model_id)} could not explain {md(stimulus_id)}: {md(err)}")
    st.stop()
face = from_blob(pixels)
st.markdown(f"**{md(explanation_sentence(model_id, stimulus_id, proba, explain))}**")
if not chosen:
    st.info("Choose a map above (Grad-CAM, Gradient SHAP or both).")
    st.bar_chart(pd.DataFrame({"probability": proba}, index=list(EMOTIONS)), horizontal=True, height=220)
    st.stop()
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
columns = ", ".join(["row", "column", "grey", *(m for m in METHODS if m in chosen)])
row.caption(f"CSV: one row per pixel ({columns}). NPY: {maps_npy_layout(cam, shap)}; "
            "`numpy.load` reads it without pickle.")
st.bar_chart(pd.DataFrame({"probability": proba}, index=list(EMOTIONS)), horizontal=True, height=220)
