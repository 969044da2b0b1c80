"""Fine-tuning: train a variant (the paper's per-distortion protocol or curated labels), watch its
training curve live, then compare it with its parent."""

import streamlit as st

from app_common import analysed, cached, get_store, md, page_header, require, show_chart, show_table
from app_identity import require_page
from disfer.analysis import robustness_curve
from disfer.analysis.overview import curated_source_count, fine_tunable_models
from disfer.analysis.training import accuracy_by_epoch
from disfer.charts import robustness_chart
from disfer.data.distortions import DISTORTIONS
from disfer.errors import DisferError
from disfer.finetune import (
    DEFAULT_EPOCHS,
    PROTOCOLS,
    fine_tuned_variants,
    finetune,
    variant_config,
)
from disfer.finetune.compare import robustness_drop
from disfer.finetune.sampling import BATCHES_PER_EPOCH, PER_CLASS
from disfer.finetune.targets import SCHEMES

require_page("finetune")

facts = page_header("Fine-tuning", "The paper's protocol (one variant per distortion: 27 batches of 42 "
                    "per epoch, half distorted, best epoch on held-out faces) or re-fine-tuning on the "
                    "curated labels with the FERPlus target schemes.")
require(facts)
store = get_store()
models = cached(fine_tunable_models)
distortions = [d for d in DISTORTIONS if d != "original"]
with st.form("finetune"):
    left, right = st.columns(2)
    with left:
        model_id = st.selectbox("Start from", models, help="Models whose weights are present here.")
        protocol = st.radio("Protocol", PROTOCOLS, horizontal=True,
                            help="paper: per distortion, original labels; curated: the curated ground truth")
        distortion = st.selectbox("Distortion", distortions + ["(all, curated only)"])
        targets = st.selectbox("Targets (curated protocol)", SCHEMES)
    with right:
        epochs = st.number_input("Epochs", min_value=1, max_value=500, value=DEFAULT_EPOCHS)
        seed = st.number_input("Seed", min_value=0, value=0)
        device = st.selectbox("Device", ["auto", "cpu", "cuda"])
        augment = st.checkbox("Distortion augmentation (render the distorted half on the fly)")
    with st.expander("Batches"):
        batches = st.number_input("Batches per epoch", min_value=1, value=BATCHES_PER_EPOCH)
        per_class = st.number_input("Images per emotion per batch", min_value=1, value=PER_CLASS)
    start = st.form_submit_button("Fine-tune", type="primary", disabled=not models)
if not models:
    st.info("No model has its weights here; `disfer models` says where each weights file goes.")

if start:
    bar = st.progress(0.0, text="checking the configuration ...")
    live = st.empty()
    rows: list[dict] = []

    def on_epoch(row: dict) -> None:
        rows.append(row)
        live.line_chart(accuracy_by_epoch(rows), x_label="epoch", y_label="accuracy")

    try:
        variant = finetune(store, model_id, protocol=protocol,
                           distortion=None if distortion.startswith("(") else distortion,
                           targets=targets if protocol == "curated" else None, epochs=int(epochs),
                           seed=int(seed), device=device, augment=augment, batches=int(batches),
                           per_class=int(per_class), on_epoch=on_epoch,
                           progress=lambda f, text: bar.progress(min(f, 1.0), text=text))
    except DisferError as err:
        bar.empty()
        st.error(md(err))
    else:
        bar.progress(1.0, text="done")
        st.session_state["finetune_variant"] = variant
        st.success(f"Registered **{md(variant)}** and predicted every stimulus with it.")

variants = cached(fine_tuned_variants)
if not variants:
    st.info("No fine-tuned variant in this store yet.")
    st.stop()
chosen = st.session_state.get("finetune_variant")
variant = st.selectbox("Variant", variants, index=variants.index(chosen) if chosen in variants else len(variants) - 1)
config = cached(variant_config, variant)
parent = config["parent"]
# The variant's config is stored JSON: every value reaches Markdown through md().
st.markdown(f"**{md(variant)}**: {md(config['protocol'])} protocol, from **{md(parent)}**, targets "
            f"{md(config['targets'])}, {md(config['epochs'])} epochs, best epoch {md(config['best_epoch'])} "
            f"(validation accuracy {config['best_val_accuracy']:.3f}, parent {config['parent_val_accuracy']:.3f}); "
            f"{md(config['split']['train_images'])} training / {md(config['split']['val_images'])} validation "
            f"images, {md(config['split']['split'])}.")
st.line_chart(accuracy_by_epoch(config["curve"]), x_label="epoch", y_label="accuracy")

label_options = ["original labels"] + (["curated labels"] if cached(curated_source_count) else [])
for labels in label_options:
    kind = "curated" if labels == "curated labels" else "original"
    st.subheader(f"Before / after, against the {labels}")
    curve = analysed(robustness_curve, raters=[parent, variant], label_kind=kind)
    if curve.empty:
        st.info(f"No predictions of {md(parent)} or {md(variant)} on labelled stimuli.")
        continue
    show_chart(robustness_chart(curve), f"finetune_{variant}_{kind}", key=f"chart_{kind}")
    show_table(robustness_drop(curve), f"finetune_drop_{variant}_{kind}", key=f"drop_{kind}")
