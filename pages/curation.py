"""Curation: work through the label audit's queue, decide each source's ground truth (one or more
emotions, optional weights), and resolve where curators disagree.

Keyboard shortcuts (when no text field has focus): 1-7 toggle anger, disgust, fear, happiness,
neutral, sadness, surprise; A confirm the original label; X exclude; Ctrl+Enter save; S skip to the
next source; P previous; Z undo my last decision. (C and R are Streamlit's own.)
"""

import os

import streamlit as st

from app_common import (
    analysed,
    cached,
    face_image,
    get_store,
    md,
    page_header,
    require,
    saliency_image,
    show_table,
)
from app_identity import allowed, hosted, require_page
from disfer import curation, ledger
from disfer.analysis import dawid_skene_labels
from disfer.analysis.overview import ready_models
from disfer.emotions import EMOTIONS
from disfer.errors import DisferError
from disfer.images import from_blob

actor = require_page("curate")

SHORTCUTS = ("1-7 toggle an emotion · A confirm the original label · X exclude · Ctrl+Enter save · "
             "S skip · P previous · Z undo my last decision")

facts = page_header("Curation", "Decisions are append-only events; the ground truth is the latest one "
                    "not undone, a lead's resolution where curators disagree.")
require(facts)
store = get_store()
state = st.session_state

# -- who is curating, and which queue -----------------------------------------------------------
# Hosted: the signed-in person, who cannot be typed; local: the name typed here.
signed_in = hosted()
if not signed_in:
    state.setdefault("curator", os.environ.get("DISFER_CURATOR", ""))
with st.sidebar:
    if not signed_in:
        st.text_input("Curator", key="curator", help="your name, recorded with every decision")
    st.caption(f"Shortcuts: {SHORTCUTS}")
curator = actor.email if signed_in else state["curator"].strip()
author = actor if signed_in else curator  # what a write records and checks (disfer.ledger)

cols = st.columns(4)
emotion = cols[0].selectbox("Emotion", ["all", *EMOTIONS], help="original or curated label")
status = cols[1].selectbox("Status", ["all", *ledger.VIEW_STATUSES])
decided_by = cols[2].text_input("Decided by", help="only sources this curator has decided")
mine_only = cols[3].checkbox("Not yet decided by me", value=False, disabled=not curator)
queue = cached(curation.review_queue, with_study=True, emotion=None if emotion == "all" else emotion,
               status=None if status == "all" else status, curator=decided_by.strip() or None,
               unreviewed_by=curator if mine_only and curator else None)
queue_ids = [int(s) for s in queue["source_id"]]

if "curation_source_id" not in state and queue_ids:
    state["curation_source_id"] = queue_ids[0]
source_id = state.get("curation_source_id")
if source_id is None:
    st.info("The queue is empty for these filters.")
    st.stop()
source_id = int(source_id)
position = queue_ids.index(source_id) if source_id in queue_ids else -1


def go(step: int) -> None:
    if not queue_ids:
        return
    nxt = position + step if position >= 0 else 0
    state["curation_source_id"] = queue_ids[max(0, min(nxt, len(queue_ids) - 1))]


def jump() -> None:
    state["curation_source_id"] = int(state["jump_to"])


nav = st.columns([1, 1, 2, 4])
nav[0].button("Previous", on_click=go, args=(-1,), shortcut="p", icon=":material/arrow_back:",
              disabled=position <= 0)
nav[1].button("Skip", on_click=go, args=(1,), shortcut="s", icon=":material/arrow_forward:",
              disabled=position >= len(queue_ids) - 1)
state["jump_to"] = source_id  # follows Skip / Previous / the audit page's "Curate"
nav[2].number_input("Open source id", min_value=1, step=1, key="jump_to", on_change=jump)
nav[3].caption(f"Queue: {len(queue_ids):,} sources, in the label audit's review order (all versions "
               "misclassified first, then most contradicted versions, contradiction strength, low "
               "agreement). "
               + (f"This is #{position + 1}." if position >= 0 else "This source is not in the filtered queue."))

try:
    info = ledger.show_source(store, source_id)
except DisferError as err:
    st.info(md(err))
    st.stop()
original = info["original_label"]
gt = info["ground_truth"]
# Stored text (labels, split, curator) goes through md(): shown as text, never as Markdown.
st.subheader(f"Source {source_id}: labelled {md(original or 'unknown')}")
st.caption(f"{md(info['dataset'])} row {info['original_index']} · {md(info['split'] or 'no split')} · "
           + ("not curated yet" if gt is None else
              f"ground truth: {md(gt['status'])} {md(', '.join(gt['labels']) or '-')} by {md(gt['curator'])}"
              + (" (lead resolution)" if gt["resolved"] else "")))

# -- the evidence: 10 versions, votes, consensus, models ----------------------------------------
evidence = cached(curation.source_evidence, source_id)
summary = evidence.version_summary(analysed(dawid_skene_labels) if facts["votes"] else None)

grid = st.columns(5)
for i, row in enumerate(summary.itertuples(index=False)):
    with grid[i % 5]:
        st.image(face_image(row.pixels, 2), width=96)
        line = f"**{md(row.version)}**: {md(row.top_votes)}"
        if row.dawid_skene is not None:
            line += f" · majority {md(row.majority)} · DS {md(row.dawid_skene)}"
        st.caption(line)

left, right = st.columns(2)
with left:
    st.markdown("**All versions together**")
    st.bar_chart(evidence.pooled_votes.rename("votes"), height=220)
    st.dataframe(evidence.vote_table(), hide_index=True)
with right:
    st.markdown("**Models' predictions**")
    if evidence.predictions.empty:
        st.caption("No model predictions for this source.")
    else:
        st.dataframe(evidence.prediction_table())

# Saliency needs torch and the model weights: loaded only when asked for, not on every source.
if st.toggle("Saliency maps", key="show_saliency"):
    from disfer.models.registry import load_model
    from disfer.models.saliency import gradcam

    ready = cached(ready_models)
    if ready:
        model_id = st.selectbox("Model", ready, key="saliency_model")
        if st.button("Compute Grad-CAM for every version"):
            model = load_model(model_id, device="cpu", store=store)
            cells = st.columns(5)
            for i, row in enumerate(summary.itertuples(index=False)):
                face = from_blob(row.pixels)
                cells[i % 5].image(saliency_image(face, gradcam(model, face), scale=2), width=96,
                                   caption=md(row.version))
    elif not st.session_state.get("saliency_model"):
        st.caption("No model with weights here: `disfer models` says where weights go.")

# -- the decision -------------------------------------------------------------------------------
st.subheader("Decision")
if state.get("form_for") != source_id or "cur_labels" not in state:
    # A new source (or back from another page, which drops widget state): start from its current
    # ground truth, else its original label.
    state["form_for"] = source_id
    state["cur_labels"] = list(gt["labels"]) if gt is not None else ([original] if original else [])
    state["cur_weights"] = "" if gt is None or gt["weights"] is None else ",".join(f"{w:g}" for w in gt["weights"])
    state["cur_note"] = ""
    state.pop("status_for", None)


def toggle(emotion_name: str) -> None:
    labels = list(state["cur_labels"])
    state["cur_labels"] = [e for e in labels if e != emotion_name] if emotion_name in labels else labels + [emotion_name]
    state["cur_weights"] = ""


def use_votes() -> None:
    labels, weights = curation.soft_label_from_votes(evidence.pooled_votes)
    state["cur_labels"], state["cur_weights"] = labels, ",".join(f"{w:g}" for w in weights)


def record(labels, weights, status_value, as_lead: bool = False) -> None:
    who = (actor if signed_in else (state.get("lead_name") or "").strip()) if as_lead else author
    try:
        if as_lead:
            event = ledger.resolve(store, source_id, labels, weights or None, status_value, who,
                                     state.get("cur_note"))
        else:
            event = ledger.record_decision(store, source_id, labels, weights or None, status_value, who,
                                             state.get("cur_note"))
    except DisferError as err:
        state["cur_message"] = ("error", str(err))
        return
    state["cur_message"] = ("ok", f"Saved event {event}: source {source_id} {status_value} "
                                  f"{', '.join(labels) or ''}")
    if not as_lead:
        go(1)


def undo_last() -> None:
    target = ledger.last_event_id(store, curator) if curator else None
    if target is None:
        state["cur_message"] = ("error", "Nothing of yours to undo (set your name in the sidebar).")
        return
    try:
        ledger.undo(store, target, author)
        state["cur_message"] = ("ok", f"Undid event {target}.")
    except DisferError as err:
        state["cur_message"] = ("error", str(err))


buttons = st.columns(7)
for i, e in enumerate(EMOTIONS):
    chosen = e in state["cur_labels"]
    buttons[i].button(e, key=f"toggle-{e}", on_click=toggle, args=(e,), shortcut=str(i + 1),
                      type="primary" if chosen else "secondary", width="stretch")
labels = st.multiselect("Labels (the first, or the heaviest, is the primary label)", EMOTIONS, key="cur_labels")
weights_text = st.text_input("Weights (soft label): one per label, summing to 1; empty for none",
                             key="cur_weights")
st.button("Use the crowd's vote distribution as a soft label", on_click=use_votes,
          disabled=int(evidence.pooled_votes.sum()) == 0)
try:
    weights = ledger.parse_weights(weights_text, len(labels))
except DisferError:
    weights = None
suggested = ledger.suggest_status(labels, weights, original)
if state.get("status_for") != (tuple(labels), weights_text):
    state["status_for"] = (tuple(labels), weights_text)
    state["cur_status"] = suggested
status_value = st.selectbox("Status", ledger.DECISION_STATUSES, key="cur_status")
st.text_input("Note", key="cur_note")

actions = st.columns(4)
actions[0].button("Save decision", type="primary", shortcut="ctrl+enter", icon=":material/check:",
                  on_click=record, args=(labels, weights_text, status_value), disabled=not curator)
actions[1].button("Confirm original label", shortcut="a", disabled=not (curator and original),
                  on_click=record, args=([original] if original else [], None, "confirmed"))
actions[2].button("Exclude (not a usable face)", shortcut="x", disabled=not curator,
                  on_click=record, args=([], None, "excluded"))
actions[3].button("Undo my last decision", shortcut="z", on_click=undo_last, icon=":material/undo:",
                  disabled=not curator)
if not curator:
    st.caption("Enter your name in the sidebar to record decisions.")
message = state.pop("cur_message", None)
if message:
    (st.success if message[0] == "ok" else st.error)(md(message[1]))

events = info["events"]
if not events.empty:
    st.markdown("**History of this source**")
    shown = events.assign(labels=events["labels"].map(", ".join),
                          weights=events["weights"].map(lambda w: "" if w is None else ", ".join(f"{x:g}" for x in w)))
    st.dataframe(shown[["event_id", "decided_at", "curator", "role", "status", "labels", "weights", "note",
                        "undoes", "undone_by"]], hide_index=True)

# -- disagreements and resolution -------------------------------------------------------------
st.subheader("Curators' agreement")
agreement = cached(curation.curator_agreement)
if agreement.pairs.empty:
    st.caption("Agreement needs two curators with common sources.")
else:
    show_table(agreement.pairs.rename(columns={"kappa": "Cohen's kappa"}), "curator_agreement")
if not agreement.disagreements.empty:
    dis = agreement.disagreements.assign(
        opinions=agreement.disagreements["opinions"].map(lambda d: "; ".join(f"{c}: {k}" for c, k in d.items())))
    show_table(dis, "curator_disagreements")
    open_ids = [int(s) for s in dis.loc[~dis["resolved"], "source_id"]]
    if open_ids:
        st.selectbox("Open an unresolved disagreement", open_ids, key="dispute_pick", index=None,
                     on_change=lambda: state.update(curation_source_id=int(state["dispute_pick"]))
                     if state.get("dispute_pick") else None)
if gt is not None and gt["n_curators"] > 1 and allowed(actor, "resolve"):
    with st.expander("Resolve this source as lead", expanded=gt["status"] == "disputed"):
        if not signed_in:
            st.text_input("Lead", key="lead_name")
        st.button("Resolve with the labels, weights and status above", on_click=record,
                  args=(labels, weights_text, status_value, True))
