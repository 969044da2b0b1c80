"""Fine-tuning: train a variant (the clean external protocol, the paper's, or the curated dataset's),
watch its training curve live, then compare it with its parent: on held-out faces first, and on all
stimuli (training images included) only beside it."""

import streamlit as st

from app_common import analysed, cached, get_store, md, page_header, require, show_chart, show_table
from app_identity import require_page
from disfer.analysis import robustness_curve
from disfer.analysis.heldout import heldout_comparison
from disfer.analysis.overview import curated_source_count, fine_tunable_models
from disfer.charts import robustness_chart
from disfer.data.distortions import DISTORTIONS
from disfer.errors import DisferError
from disfer.finetune import (
    DEFAULT_EPOCHS,
    MAX_BATCHES,
    MAX_EPOCHS,
    MAX_PER_CLASS,
    PROTOCOLS,
    evaluation_note,
    fine_tuned_variants,
    finetune,
    plural,
    validation_note,
    variant_config,
)
from disfer.finetune.compare import curve_for_chart, robustness_drop
from disfer.finetune.pools import source_splits
from disfer.finetune.sampling import BATCHES_PER_EPOCH, PER_CLASS
from disfer.finetune.targets import SCHEMES
from disfer.finetune.train import LEVEL_MIXES, TRAIN_LAYERS

actor = require_page("finetune")

facts = page_header("Fine-tuning", "External (faces outside the study, the study's distortion rendered "
                    "on the fly: the study stays a clean test set), the paper's protocol (the study's "
                    "own stimuli, one variant per distortion) or the curated dataset with the FERPlus "
                    "target schemes; 27 batches of 42 per epoch, half distorted, best epoch on "
                    "validation faces.")
require(facts)
store = get_store()
models = cached(fine_tunable_models)
splits = cached(source_splits)
ALL_SPLITS = "(every split)"
distortions = [d for d in DISTORTIONS if d != "original"]
with st.form("finetune"):
    left, right = st.columns(2)
    with left:
        model_id = st.selectbox("Start from", models, help="Models whose weights are present here.")
        protocol = st.radio("Protocol", PROTOCOLS, horizontal=True,
                            help="external: faces outside the study, the study kept as a test set; "
                                 "paper: the study's own stimuli (its evaluation includes training "
                                 "images); curated: curated labels where decided, original elsewhere")
        distortion = st.selectbox("Distortion", distortions + ["(all, external or curated)"])
        targets = st.selectbox("Targets (curated protocol)", SCHEMES)
        split = st.selectbox("Faces of split (external and curated)", [ALL_SPLITS] + splits,
                             help="external: the outside faces of this split; curated: the study's "
                                  "faces of it (the ingest's Usage column)")
    with right:
        epochs = st.number_input("Epochs", min_value=1, max_value=MAX_EPOCHS, value=DEFAULT_EPOCHS)
        seed = st.number_input("Seed", min_value=0, value=0)
        device = st.selectbox("Device", ["auto", "cpu", "cuda"])
        train_layers = st.selectbox("Layers that train", TRAIN_LAYERS,
                                    help="all, or head: only the layer that emits the logits; the "
                                         "rest stays the parent's")
        level_mix = st.selectbox("Level mix of the distortions rendered on the fly", LEVEL_MIXES,
                                 help="uniform: each level equally often; strongest: level k with "
                                      "weight k; range: the parameter uniform between the weakest "
                                      "and the strongest level's")
        # A short label (a long one is cut with "..." in a half-width column); the detail in help.
        augment = st.checkbox("Render distortions on the fly",
                              help="Paper and curated protocols: render the distorted half of each batch "
                                   "on the fly instead of using the study's stimuli. External always does.")
    with st.expander("Batches"):
        batches = st.number_input("Batches per epoch", min_value=1, max_value=MAX_BATCHES,
                                  value=BATCHES_PER_EPOCH)
        per_class = st.number_input("Images per emotion per batch", min_value=1, max_value=MAX_PER_CLASS,
                                    value=PER_CLASS)
    start = st.form_submit_button("Fine-tune", type="primary", disabled=not models)
if not models:
    st.info("No model has its weights here; `disfer models` says where each weights file goes.")

if start:
    bar = st.progress(0.0, text="checking the configuration ...")
    live = st.empty()
    rows: list[dict] = []

    def on_epoch(row: dict) -> None:
        rows.append(row)
        live.line_chart(curve_for_chart(rows), x_label="epoch", y_label="accuracy")

    try:
        variant = finetune(store, model_id, protocol=protocol,
                           distortion=None if distortion.startswith("(") else distortion,
                           targets=targets if protocol == "curated" else None, epochs=int(epochs),
                           seed=int(seed), device=device, augment=augment, batches=int(batches),
                           per_class=int(per_class), on_epoch=on_epoch,
                           train_split=None if split == ALL_SPLITS else split,
                           train_layers=train_layers, level_mix=level_mix,
                           progress=lambda f, text: bar.progress(min(f, 1.0), text=text), actor=actor)
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
            f"{md(config['targets'])}, {md(plural(config['epochs'], 'epoch'))}, best epoch "
            f"{md(config['best_epoch'])} (validation accuracy {config['best_val_accuracy']:.3f}, parent "
            f"{config['parent_val_accuracy']:.3f}); {md(config['split']['train_images'])} training / "
            f"{md(config['split']['val_images'])} validation images, {md(config['split']['split'])}; "
            f"faces of {md(config.get('train_split') or 'every split')}, layers trained: "
            f"{md(config.get('train_layers', 'all'))}, level mix: {md(config.get('level_mix', 'uniform'))}.")
flag = validation_note(config)
if flag:
    st.warning(f"{md(variant)} is {md(flag)}: registered all the same.")
st.caption(md(evaluation_note(config)))
st.line_chart(curve_for_chart(config["curve"]), x_label="epoch", y_label="accuracy")

train_sources = tuple(config.get("train_sources", config["split"]["train_sources"]))
val_sources = tuple(config.get("val_sources", config["split"]["val_sources"]))
label_options = ["original labels"] + (["curated labels"] if cached(curated_source_count) else [])
if config["protocol"] == "curated":   # it trained, validated and is judged on the curated labels
    label_options.reverse()
for labels in label_options:
    kind = "curated" if labels == "curated labels" else "original"
    held = analysed(heldout_comparison, variant, parent, train_sources, val_sources, label_kind=kind)
    st.subheader(f"Held-out faces only, against the {labels}")
    if held.n == 0:
        st.info(f"No held-out face: every face of the study was used to train or validate "
                f"{md(variant)} (or a model has no predictions), so there is no fair comparison here.")
    else:
        a, b, c = st.columns(3)
        a.metric(f"{variant} (held out)", f"{held.accuracy:.1%}",
                 delta=f"{100 * (held.accuracy - held.parent_accuracy):+.1f} points")
        b.metric(f"{parent} (same stimuli)", f"{held.parent_accuracy:.1%}")
        c.metric("McNemar p (exact)", f"{held.mcnemar_p:.2g}")
        st.caption(f"{held.n} held-out stimuli of {held.sources} faces never used for training or validation.")
        show_table(held.per_condition, f"finetune_heldout_{variant}_{kind}", key=f"held_{kind}")
    curve = analysed(robustness_curve, raters=[parent, variant], label_kind=kind)
    if curve.empty:
        st.info(f"No predictions of {md(parent)} or {md(variant)} on labelled stimuli.")
        continue
    included = config.get("evaluation_includes_training_images", True)
    with st.expander(f"Before / after on all stimuli, against the {labels}"
                     + (" (includes training images)" if included else " (all held out)"),
                     expanded=not included):
        if included:
            st.caption("These figures include the images the variant trained on: not a measure of "
                       "generalisation.")
        show_chart(robustness_chart(curve), f"finetune_{variant}_{kind}", key=f"chart_{kind}")
        show_table(robustness_drop(curve), f"finetune_drop_{variant}_{kind}", key=f"drop_{kind}")
