"""Curation: work through the review queue, one screen per decision: the face large, its versions,
the crowd's votes, the models' answers, the audit's reason and the decision, all without scrolling
at 1400x900; the detail (per-version votes, every model's answers, history, saliency, curators'
agreement, the queue ahead) in expanders below; a lead's review of a disputed face under the decision.

Keyboard shortcuts (when no text field has focus): 1-7 toggle anger, disgust, fear, happiness,
neutral, sadness, surprise; A confirm the original label; X exclude; Ctrl+Enter save; S skip to the
next source; P previous; Z undo my last decision; V the crowd's votes as a soft label. (C and R
are Streamlit's own.)

Soft locks: the face on my screen is marked open (`disfer.ledger.locks`); faces other curators
have open are "being reviewed by" them, passed by Skip, Previous and the next face after a save,
and refused to a curator who asks for one (a lead may open them).

Review (a lead, on a face where curators disagree): accept one curator's decision, fix & accept
with the lead's own labels (the form), or reject: the face goes back to its curators, undecided.

Who and where stay: in local use the curator's name and the queue position live in the session and
in the address (`?curator=NAME&source=ID`), so another page, a reload or a bookmark keeps them; in
hosted mode the curator is the signed-in person and cannot be typed.
"""

import html
import os
import time

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
             "S skip · P previous · Z undo my last decision · V the crowd's votes as a soft label")
FACE_PX = 240  # the face a curator judges: 48 px shown 5x, every stored pixel a 5x5 block
THUMB_PX = 80
MARK_REFRESH_S = 60  # my mark on the open face is renewed this often (any key press), well within LOCK_MINUTES
MARKS_FRESH_S = 15  # others' marks read this long ago still guide Skip / next; older ones are read again
COMING_UP = 15  # faces listed in "Coming up"
# One screen per decision: less air between elements than Streamlit's default, pixel faces kept
# crisp at any zoom (the browser would blur them), vote bars drawn as plain boxes.
CSS = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.2rem; padding-bottom: 2rem; }
[data-testid="stMainBlockContainer"] h1 { font-size: 1.9rem; padding: 0 0 .2rem 0; }
[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] { gap: .45rem; }
[data-testid="stMainBlockContainer"] [data-testid="stAlertContainer"] { padding: .35rem .8rem; }
[data-testid="stMainBlockContainer"] h3 { font-size: 1.35rem; padding: .1rem 0; }
[data-testid="stImage"] img { image-rendering: pixelated; }
.vote-bars { font-size: .82rem; line-height: 1.05rem; }
.vote-bars .row { display: flex; align-items: center; gap: .35rem; }
.vote-bars .name { width: 5.6rem; } .vote-bars .n { width: 2.4rem; text-align: right; }
.vote-bars .track { flex: 1; height: .7rem; background: rgba(128,128,128,.15); border-radius: 2px; }
.vote-bars .bar { height: 100%; background: #4c78a8; border-radius: 2px; }
.vote-bars .label .name { font-weight: 700; }
</style>"""

facts = page_header("Curation")
require(facts)
store = get_store()
state = st.session_state
st.html(CSS)

# -- who is curating --------------------------------------------------------------------------
# Hosted: the signed-in person, who cannot be typed. Local: a name kept under the session key
# "curator" (not a widget's key: Streamlit drops a widget's state on a page without the widget),
# seeded from the address, then $DISFER_CURATOR.
signed_in = hosted()
if not signed_in:
    if not str(state.get("curator") or "").strip():
        state["curator"] = (st.query_params.get("curator") or os.environ.get("DISFER_CURATOR", "")).strip()
    if "curator_field" not in state:
        state["curator_field"] = state["curator"]


def set_curator() -> None:
    state["curator"] = state["curator_field"].strip()


with st.sidebar:
    if not signed_in:
        st.text_input("Curator", key="curator_field", on_change=set_curator,
                      help="your name, recorded with every decision; kept across pages and in the address")
curator = actor.email if signed_in else state["curator"]
author = actor if signed_in else curator  # what a write records and checks (disfer.ledger)

# -- which queue --------------------------------------------------------------------------------
with st.sidebar:
    st.markdown("**Queue**")
    emotion = st.selectbox("Emotion", ["all", *EMOTIONS], key="q_emotion", help="original or curated label")
    status = st.selectbox("Status", ["all", *ledger.VIEW_STATUSES], key="q_status")
    decided_by = st.text_input("Decided by", key="q_decided_by", help="only sources this curator has decided")
    mine_only = st.checkbox("Not yet decided by me", key="q_mine_only", disabled=not curator)
queue = cached(curation.review_queue, with_study=True, emotion=None if emotion == "all" else emotion,
               status=None if status == "all" else status, curator=decided_by.strip() or None,
               unreviewed_by=curator if mine_only and curator else None)
queue_ids = [int(s) for s in queue["source_id"]]
mine = {int(s) for s, cs in zip(queue["source_id"], queue["curators"], strict=True) if curator in cs}


def marks() -> dict:
    """Everyone's open faces (soft locks), read again when older than MARKS_FRESH_S."""
    if time.monotonic() - state.get("marks_at", -1e9) > MARKS_FRESH_S:
        state["marks"], state["marks_at"] = ledger.open_marks(store), time.monotonic()
    return state["marks"]


def held() -> dict[int, list[str]]:
    """Faces other curators have open: {source_id: [curator, ...]}."""
    return ledger.held_by_others(marks(), curator or None)


def open_face(sid: int) -> None:
    """Show face `sid`, and mark it mine at once (from a callback: before the run reads the store,
    so the run that follows reads the change counter once, not again after my mark)."""
    state["curation_source_id"] = int(sid)
    if curator and ledger.may_open(sid, marks(), curator, actor):
        state["marks"] = ledger.mark_open(store, sid, author)
        state["marks_at"] = state["marked_at"] = time.monotonic()
        state["marked"] = (int(sid), curator)


def may_open(sid: int) -> bool:
    if ledger.may_open(sid, marks(), curator or None, actor):
        return True
    state["cur_message"] = ("info", f"Source {sid} is being reviewed by {', '.join(held()[sid])}: "
                            "left to them (a lead can open it).")
    return False


if "curation_source_id" not in state:
    # A new session (a reload, a bookmark): the address's source, else the first in the queue
    # this curator has not decided and nobody else has open.
    asked = st.query_params.get("source", "")
    fresh = [s for s in queue_ids if s not in mine and s not in held()]
    first = (fresh or queue_ids or [None])[0]
    state["curation_source_id"] = int(asked) if asked.isdigit() and may_open(int(asked)) else first
source_id = state.get("curation_source_id")
if source_id is None:
    st.info("The queue is empty for these filters.")
    st.stop()
source_id = int(source_id)
position = queue_ids.index(source_id) if source_id in queue_ids else -1
if signed_in:
    st.query_params["source"] = str(source_id)
else:
    st.query_params.update({"source": str(source_id), **({"curator": curator} if curator else {})})


def go(step: int) -> None:
    """Skip (+1) or Previous (-1): the nearest face that way nobody else has open."""
    if not queue_ids:
        return
    start = position if position >= 0 else (-1 if step > 0 else len(queue_ids))
    found = ledger.next_free(queue_ids, start, step, set(held()))
    if found is None:
        state["cur_message"] = ("info", "No face that way is free: the others are being reviewed by other curators.")
        return
    open_face(found)


def go_next_undecided() -> None:
    """After a decision: the next source in the queue this curator has not decided and nobody else
    has open, from the start again after the last (else the next free one)."""
    start = position + 1 if position >= 0 else 0
    busy = held()
    ahead = [s for s in queue_ids[start:] + queue_ids[:start] if s not in mine and s != source_id and s not in busy]
    if ahead:
        open_face(ahead[0])
    else:
        go(1)


def jump(sid: int) -> None:
    if may_open(int(sid)):
        open_face(sid)


with st.sidebar:
    state["jump_to"] = source_id  # follows Skip / Previous / the audit page's "Curate"
    st.number_input("Open source id", min_value=1, step=1, key="jump_to",
                    on_change=lambda: jump(state["jump_to"]))
    st.caption(f"Shortcuts: {SHORTCUTS}")

# -- where we are ---------------------------------------------------------------------------------
progress = curation.queue_progress(queue, curator or None)
nav = st.container(horizontal=True, vertical_alignment="center", gap="small")
nav.button("Previous", on_click=go, args=(-1,), shortcut="p", icon=":material/arrow_back:",
           disabled=position <= 0)
nav.button("Skip", on_click=go, args=(1,), shortcut="s", icon=":material/arrow_forward:",
           disabled=position >= len(queue_ids) - 1)
settings = cached(ledger.curation_settings, curator or None)  # blind mode, the target, my day: one read
target, today = settings["target"], settings["today"]
where = f"#{position + 1} of {len(queue_ids):,}" if position >= 0 else "not in this queue"
mine_text = (f"mine {progress.mine:,} decided, {progress.remaining_mine:,} to go · {today:,} decisions today"
             if curator else "no curator yet")
target_text = f" · {progress.below_target:,} below the target of {target} curators" if target > 1 else ""
nav.markdown(f"**{where}** · everyone: {progress.decided:,} decided, {progress.remaining:,} remaining{target_text} · "
             f"{mine_text}")

try:
    info = ledger.show_source(store, source_id)
except DisferError as err:
    st.info(md(err))
    st.stop()
original = info["original_label"]
gt = info["ground_truth"]
# My mark on the face I have open: written when I open it and renewed while I work on it (one small
# write that reloads nothing); it brings everyone's marks back with it.
if curator and ledger.may_open(source_id, marks(), curator, actor) and (
        state.get("marked") != (source_id, curator) or time.monotonic() - state["marked_at"] > MARK_REFRESH_S):
    state["marks"] = ledger.mark_open(store, source_id, author)
    state["marks_at"] = state["marked_at"] = time.monotonic()
    state["marked"] = (source_id, curator)
reviewing = held()
evidence = cached(curation.source_evidence, source_id, study_only=True)  # votes and models only

# Blind mode: others' decisions on this face stay hidden until I have decided it (a lead may look).
blind = settings["blind"]
events = info["events"]
i_decided = bool(curator) and bool(((events["curator"] == curator) & (events["status"] != "undo")
                                    & events["undone_by"].isna()).any()) if len(events) else False
hidden = blind and gt is not None and not i_decided and not state.get("blind_reveal", False)
with st.sidebar:
    if allowed(actor, "resolve"):
        lead_author = author if signed_in else (curator or "local")
        st.toggle("Blind mode", value=blind, key="blind_setting", on_change=lambda: ledger.set_blind_mode(
            store, state["blind_setting"], lead_author),
            help="for the whole study: curators see others' decisions on a face only after deciding it")
        st.number_input("Curators per face (target)", min_value=1, max_value=ledger.MAX_TARGET,
                        value=target, step=1, key="target_setting",
                        on_change=lambda: ledger.set_target_curators(store, state["target_setting"], lead_author),
                        help="for the whole study: faces with fewer curators' decisions come first in the queue")
        if blind:
            st.toggle("Show others' decisions anyway (lead)", key="blind_reveal")
    elif blind:
        st.caption("Blind mode: others' decisions on a face show once you have decided it.")

# Stored text (labels, split, curator, notes) goes through md(): shown as text, never as Markdown.
st.subheader(f"Source {source_id}: labelled {md(original or 'unknown')}")
if source_id in reviewing:
    st.warning(f"Being reviewed by {md(', '.join(reviewing[source_id]))}: opened in the last "
               f"{ledger.LOCK_MINUTES} minutes.", icon=":material/lock:")
order = curation.queue_order(queue)
fallback = order.startswith("dataset order")  # before votes: say why the order is not the audit's
st.caption(f"**Audit:** {md(evidence.audit_reason(original))}" + (f" · queue in {md(order)}" if fallback else ""))
with st.sidebar:
    st.caption(f"Queue order: {md(order)}")

# -- one screen: face | evidence | decision ---------------------------------------------------------
face_col, evidence_col, decision_col = st.columns([268, 252, 480], gap="small")
with face_col:
    st.image(face_image(evidence.face if evidence.face else b"", 5), width=FACE_PX)
    st.caption(f"{md(info['dataset'])} row {info['original_index']} · {md(info['split'] or 'no split')} · "
               + ("not curated yet" if gt is None else
                  "decided by others: hidden until you decide (blind mode)" if hidden else
                  f"ground truth: {md(gt['status'])} {md(', '.join(gt['labels']) or '-')} by {md(gt['curator'])}"
                  + (" (lead resolution)" if gt["resolved"] else "")))


def vote_bars(counts, label: str | None) -> str:
    """The crowd's votes per emotion as small bars (HTML of numbers and emotion names only)."""
    top = max(int(counts.max()), 1)
    rows = []
    for e in EMOTIONS:
        n = int(counts[e])
        rows.append(f'<div class="row{" label" if e == label else ""}"><span class="name">{html.escape(e)}</span>'
                    f'<span class="track"><div class="bar" style="width:{100 * n / top:.1f}%"></div></span>'
                    f'<span class="n">{n}</span></div>')
    return f'<div class="vote-bars">{"".join(rows)}</div>'


with evidence_col:
    if evidence.n_votes:
        st.markdown(f"**Crowd votes**, {evidence.n_votes:,} on all versions (label in bold)")
        st.html(vote_bars(evidence.pooled_votes, original))
    else:
        st.markdown("**Crowd votes**")
        st.caption("No crowd votes on this face yet: judge by the face and the models.")
    st.markdown("**Models**")
    answers = evidence.model_answers()
    if answers.empty:
        st.caption("No model predictions for this face.")
    for a in answers.itertuples(index=False):
        on_original = f"{a.original} ({a.confidence:.0%}) on the original" if a.original else "no answer on the original"
        st.caption(f"{md(a.model_id)}: {md(on_original)}; {md(a.top)} on {a.top_count} of {a.n_versions} versions")

# -- the decision ---------------------------------------------------------------------------------
if state.get("form_for") != source_id or "cur_labels" not in state:
    # A new source (or back from another page, which drops widget state): start from its current
    # ground truth, else its original label.
    state["form_for"] = source_id
    start = None if hidden else gt  # blind: from the original label, not from others' decision
    state["cur_labels"] = list(start["labels"]) if start is not None else ([original] if original else [])
    state["cur_weights"] = "" if start is None or start["weights"] is None else \
        ",".join(f"{w:g}" for w in start["weights"])
    state["cur_note"] = ""
    state.pop("status_for", None)


def toggle(emotion_name: str) -> None:
    labels = list(state["cur_labels"])
    state["cur_labels"] = [e for e in labels if e != emotion_name] if emotion_name in labels else labels + [emotion_name]
    state["cur_weights"] = ""


def use_votes() -> None:
    labels, weights = curation.soft_label_from_votes(evidence.pooled_votes)
    state["cur_labels"], state["cur_weights"] = labels, ",".join(f"{w:g}" for w in weights)


def describe(event: dict | None) -> str:
    if event is None:
        return "an event that no longer exists"
    what = ", ".join(event["labels"]) or "no labels"
    if event["weights"] is not None:
        what = ", ".join(f"{lab} {w:g}" for lab, w in zip(event["labels"], event["weights"], strict=True))
    return f"source {event['source_id']}: {event['status']} {what}"


def form_decision() -> tuple[list[str], str, str]:
    """The form's labels, weights and status as they are when a key is pressed: read in the
    callback, not bound when the button was drawn, since a fast "5, Ctrl+Enter" reaches the server
    as two callbacks before the page is drawn again. A status the curator did not choose for these
    labels is the suggested one."""
    labels, weights = list(state["cur_labels"]), state.get("cur_weights", "")
    if state.get("status_for") == (tuple(labels), weights) and state.get("cur_status"):
        return labels, weights, state["cur_status"]
    try:
        parsed = ledger.parse_weights(weights, len(labels))
    except DisferError:
        parsed = None
    return labels, weights, ledger.suggest_status(labels, parsed, original)


def save_form() -> None:
    record(*form_decision())


def record(labels, weights, status_value) -> None:
    try:
        event = ledger.record_decision(store, source_id, labels, weights or None, status_value, author,
                                       state.get("cur_note"))
    except DisferError as err:
        state["cur_message"] = ("error", str(err))
        return
    saved = {"source_id": source_id, "status": status_value, "labels": ledger.parse_labels(labels),
             "weights": ledger.parse_weights(weights, len(labels)) if weights else None}
    state["cur_message"] = ("ok", f"Saved {describe(saved)} (event {event}).")
    go_next_undecided()


REVIEW_DONE = {"accept": "accepted {whose}'s decision", "fix": "fixed and accepted with {what}",
               "reject": "sent back to its curators"}


def review_face(outcome: str, whose: str | None = None) -> None:
    """A lead's review of this face (the same `ledger.review` as `disfer curate review`); on to the
    next face of the queue."""
    labels, weights, status_value = form_decision() if outcome == "fix" else (None, None, None)
    try:
        event = ledger.review(store, source_id, outcome, author, curator=whose, labels=labels,
                              weights=weights or None, status=status_value, note=state.get("cur_note"))
    except DisferError as err:
        state["cur_message"] = ("error", str(err))
        return
    what = describe({"source_id": source_id, "status": status_value, "labels": ledger.parse_labels(labels or []),
                     "weights": ledger.parse_weights(weights, len(labels)) if weights else None})
    done = REVIEW_DONE[outcome].format(whose=whose, what=what.split(": ", 1)[-1])
    state["cur_message"] = ("ok", f"Review of source {source_id}: {done} (event {event}).")
    go_next_undecided()


def undo_last() -> None:
    target = ledger.last_event_id(store, curator) if curator else None
    if target is None:
        state["cur_message"] = ("error", "Nothing of yours to undo." if curator else
                                "Nothing to undo: enter your name in the sidebar first.")
        return
    undone = ledger.event_summary(store, target)
    try:
        ledger.undo(store, target, author)
    except DisferError as err:
        state["cur_message"] = ("error", str(err))
        return
    state["cur_message"] = ("ok", f"Undid your decision on {describe(undone)} (event {target}); back to that face.")
    if undone is not None:
        open_face(undone["source_id"])
        state.pop("form_for", None)  # the form starts again from what the face is now


labels = list(state["cur_labels"])
with decision_col:
    toggles = st.container(horizontal=True, gap="small")
    for i, e in enumerate(EMOTIONS):
        toggles.button(e, key=f"toggle-{e}", on_click=toggle, args=(e,), shortcut=str(i + 1),
                       type="primary" if e in labels else "secondary")
    weights_text = state.get("cur_weights", "")
    weights, weights_error = None, None
    try:
        weights = ledger.parse_weights(weights_text, len(labels))
    except DisferError as err:
        weights_error = str(err)
    primary = ledger.primary_label(labels, weights)
    st.caption(f"Labels: {md(', '.join(labels) or 'none (exclude)')}"
               + (f" · primary **{md(primary)}**" if len(labels) > 1 else ""))
    suggested = ledger.suggest_status(labels, weights, original)
    if state.get("status_for") != (tuple(labels), weights_text):
        state["status_for"] = (tuple(labels), weights_text)
        state["cur_status"] = suggested
    row = st.columns([1.1, 1, 1.3], gap="small")
    row[0].text_input("Weights (soft label)", key="cur_weights", placeholder="e.g. 0.6,0.4",
                      help="one per label in the order above, summing to 1; empty for none")
    status_value = row[1].selectbox("Status", ledger.DECISION_STATUSES, key="cur_status")
    row[2].text_input("Note", key="cur_note")
    if weights_error:
        st.error(md(weights_error), icon=":material/error:")
    actions = st.container(horizontal=True, gap="small")
    actions.button("Save decision", type="primary", shortcut="ctrl+enter", icon=":material/check:",
                   on_click=save_form,
                   disabled=not curator or weights_error is not None)
    actions.button("Confirm original label", shortcut="a", disabled=not (curator and original),
                   on_click=record, args=([original] if original else [], None, "confirmed"),
                   help="keep the dataset's label")
    actions.button("Exclude", shortcut="x", disabled=not curator, on_click=record, args=([], None, "excluded"),
                   help="not a usable face: no labels")
    actions.button("Undo my last", shortcut="z", on_click=undo_last, icon=":material/undo:",
                   disabled=not curator, help="undo my latest decision and go back to that face")
    actions.button("Crowd as soft label", shortcut="v", on_click=use_votes, disabled=evidence.n_votes == 0,
                   help="the crowd's vote distribution over all versions as labels and weights")
    if not curator:
        st.warning("Enter your name as Curator in the sidebar to record decisions.")
    if gt is not None and gt["status"] == "disputed" and not hidden and allowed(actor, "review"):
        # A lead's review of a disagreement: each curator's decision, and the three outcomes.
        opinions = info["opinions"]
        st.markdown("**Review (lead):** " + md(" · ".join(
            f"{o['curator']}: {o['status']} {', '.join(o['labels']) or '-'}" for o in opinions)))
        outcomes = st.container(horizontal=True, gap="small")
        for i, o in enumerate(opinions):
            outcomes.button(f"Accept {md(o['curator'])}'s", key=f"accept-{i}", on_click=review_face,
                            args=("accept", o["curator"]), disabled=not curator,
                            help="this curator's decision as it is becomes the ground truth")
        outcomes.button("Fix & accept", key="review-fix", on_click=review_face, args=("fix",),
                        disabled=not curator or weights_error is not None,
                        help="the labels, weights and status in the form above become the ground truth")
        outcomes.button("Reject", key="review-reject", on_click=review_face, args=("reject",),
                        disabled=not curator, help="send back: the face returns to the queue, undecided for its curators")
    message = state.pop("cur_message", None)
    if message:
        {"ok": st.success, "info": st.info}.get(message[0], st.error)(md(message[1]))

# -- the versions, as a strip --------------------------------------------------------------------
# Dawid-Skene's labels cost a fit over every vote of the study after each change of the store: only
# on demand (below), not on the path from one decision to the next.
with_ds = bool(facts["votes"]) and state.get("show_ds", False)
summary = evidence.version_summary(analysed(dawid_skene_labels) if with_ds else None)
majorities = evidence.version_majorities()
strip = st.columns(len(summary)) if len(summary) else []
for cell, row, majority in zip(strip, summary.itertuples(index=False), majorities, strict=True):
    cell.image(face_image(row.pixels, 2), width=THUMB_PX)
    cell.caption(f"{md(row.version)}  \n{md(majority or 'no votes')}")

# -- the detail, below ----------------------------------------------------------------------------
with st.expander("Votes and models on every version, this face's history"):
    detail = st.columns([3, 2])
    if evidence.n_votes:
        detail[0].markdown("**Votes per version**")
        table = evidence.vote_table()
        table.insert(1, "majority", [m or "" for m in majorities])
        if with_ds:
            table.insert(2, "dawid_skene", summary["dawid_skene"].fillna("").to_numpy())
        detail[0].dataframe(table, hide_index=True, width="stretch")
        detail[0].toggle("Dawid-Skene label per version", key="show_ds",
                         help="fitted over every vote of the study: a moment after each change of the store")
    else:
        detail[0].caption("No crowd votes on this face yet.")
    if evidence.predictions.empty:
        detail[1].caption("No model predictions for this face.")
    else:
        detail[1].markdown("**Models on every version**")
        detail[1].dataframe(evidence.prediction_table(), width="stretch")
    if hidden:
        st.caption("History of this face: hidden until you decide it (blind mode).")
    elif not events.empty:
        st.markdown("**History of this face**")
        shown = events.assign(labels=events["labels"].map(", ".join),
                              weights=events["weights"].map(lambda w: "" if w is None else ", ".join(f"{x:g}" for x in w)))
        st.dataframe(shown[["event_id", "decided_at", "curator", "role", "status", "labels", "weights", "note",
                            "undoes", "undone_by"]], hide_index=True)
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

# -- the queue ahead, with the soft locks --------------------------------------------------------
n_held = len(reviewing)
with st.expander(f"Coming up in the queue ({n_held} face{'s' if n_held != 1 else ''} being reviewed by others)"
                 if n_held else "Coming up in the queue"):
    here = max(position, 0)  # from this face on, round to the start after the last
    ahead = curation.with_locks(queue, marks(), curator or None)
    ahead = ahead.iloc[[*range(here, len(ahead)), *range(here)][:COMING_UP]]
    st.dataframe(ahead.assign(curators=ahead["curators"].map(len))[
        ["source_id", "original_label", "curators", "being_reviewed_by"]], hide_index=True)
    st.caption("Skip, Previous and the next face after a save pass by the faces being reviewed by others "
               f"(opened in the last {ledger.LOCK_MINUTES} minutes).")

# -- disagreements and the lead's review ---------------------------------------------------------
disputed = gt is not None and gt["status"] == "disputed" and not hidden
n_curators = len(set().union(*queue["curators"])) if len(queue) else 0
if hidden:
    st.caption("Curators' agreement: hidden until you decide this face (blind mode).")
    st.stop()
with st.expander("Curators' agreement and their disagreements", expanded=disputed):
    # Kappa needs scikit-learn and every opinion: computed when asked for (or on a disputed face).
    show_agreement = n_curators > 1 and (disputed or st.toggle("Cohen's kappa between curators",
                                                                key="show_agreement"))
    agreement = cached(curation.curator_agreement) if show_agreement else None
    if agreement is None:
        st.caption("Agreement needs two curators with common sources." if n_curators < 2 else
                   "Turn on to compute the curators' agreement and list their disagreements.")
    elif agreement.pairs.empty:
        st.caption("Agreement needs two curators with common sources.")
    else:
        show_table(agreement.pairs.rename(columns={"kappa": "Cohen's kappa"}), "curator_agreement")
    if agreement is not None and not agreement.disagreements.empty:
        dis = agreement.disagreements.assign(
            opinions=agreement.disagreements["opinions"].map(lambda d: "; ".join(f"{c}: {k}" for c, k in d.items())))
        show_table(dis, "curator_disagreements")
        open_ids = [int(s) for s in dis.loc[~dis["resolved"], "source_id"]]
        if open_ids:
            st.selectbox("Open an unresolved disagreement", open_ids, key="dispute_pick", index=None,
                         on_change=lambda: jump(state["dispute_pick"]) if state.get("dispute_pick") else None)
