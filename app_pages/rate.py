"""The participant's page of the crowd study, at /rate: consent, instructions, the playlist's faces
one at a time with the seven emotion buttons (keys 1-7), and the end code. Public even in hosted
mode and shows nothing else of the study: the router serves it without sign-in and without the
dashboard's navigation. Every rule (assignment, resume, checks, refusals) is disfer.data.rating's.

Opened with Prolific's `?PROLIFIC_PID=..&STUDY_ID=..&SESSION_ID=..`, another recruiter's `?pid=..`,
or nothing (a random anonymous id, put into the address so a reload resumes it).
"""

from __future__ import annotations

import io
import os
import time

import streamlit as st

from app_common import face_image, get_store
from disfer.data import rating
from disfer.data.stimuli import stimulus_pixels
from disfer.emotions import EMOTIONS

# Set by benchmarks/bench_rating.py: each answer's server time (callback start to the next face
# sent) is appended to this file, one number of milliseconds a line.
TIMINGS = os.environ.get("DISFER_RATE_TIMINGS")
ARRIVAL, SESSION, SHOWN, STARTED, PROBLEM, T0 = ("rate_arrival", "rate_session", "rate_shown", "rate_started",
                                                 "rate_problem", "rate_t0")
FACE_SCALE = 7  # 48 px faces shown at 336 px, hard pixel edges

# Nothing of the dashboard around the participant's task (in local use the router's sidebar would
# list the study's pages). Constant CSS of ours, not text from anywhere else.
st.html("<style>[data-testid='stSidebar'], [data-testid='stSidebarCollapsedControl'],"
        " [data-testid='stSidebarNav'] {display: none;}"
        # the 48 px face is sent as it is and enlarged by the browser with hard pixel edges
        " [data-testid='stImage'] img {image-rendering: pixelated;}</style>")
store = get_store()


@st.cache_data(max_entries=64, show_spinner=False)
def _faces(db_path: str, stimulus_ids: tuple[str, ...]) -> dict[str, bytes]:
    """A playlist's faces as 48x48 PNGs (about 2 KB; the browser enlarges them), read and encoded
    once per server for all its participants (they never change): an answer costs no encoding."""
    from PIL import Image

    pngs = {}
    for sid, pixels in stimulus_pixels(store, stimulus_ids).items():
        out = io.BytesIO()
        Image.fromarray(face_image(pixels, 1)).save(out, format="PNG")
        pngs[sid] = out.getvalue()
    return pngs


def _fail(text: str) -> None:
    st.session_state[PROBLEM] = text


def _start(consent: bool) -> None:
    try:
        st.session_state[SESSION] = rating.start(store, st.session_state[ARRIVAL], consent)
    except rating.RatingError as err:
        _fail(str(err))


def _answer(item: rating.Item, emotion: str) -> None:
    st.session_state[T0] = time.perf_counter()
    shown = st.session_state.get(SHOWN)
    rt_ms = (time.time() - shown[1]) * 1000 if shown and shown[0] == item else None
    try:
        st.session_state[SESSION] = rating.answer(store, st.session_state[ARRIVAL].participant_id,
                                                  item, emotion, rt_ms)
    except rating.RatingError as err:
        _fail(str(err))
        st.session_state.pop(SESSION, None)  # read it again from the store


st.title("Facial expressions study")

if ARRIVAL not in st.session_state:
    try:
        arrival = rating.arrival_from_link(st.query_params.to_dict())
    except rating.RatingError:
        # Nothing of what the link carried is shown back.
        st.error("This study link is not valid. Please open the study again from where you found it.")
        st.stop()
    st.session_state[ARRIVAL] = arrival
    if arrival.anonymous:
        st.query_params["pid"] = arrival.participant_id  # a reload keeps the same participant
arrival = st.session_state[ARRIVAL]
if SESSION not in st.session_state:
    st.session_state[SESSION] = rating.session(store, arrival.participant_id)
session = st.session_state[SESSION]
if session is None or session.next_item is None or "rate_settings" not in st.session_state:
    st.session_state["rate_settings"] = rating.read_settings(store)  # fresh at the start and the end
settings = st.session_state["rate_settings"]

if problem := st.session_state.pop(PROBLEM, None):
    st.warning(problem.capitalize() + ".")  # our own sentences (RatingError), never participant input

if session is None:
    st.subheader("Consent")
    st.text(settings.consent_text)  # the admin's text, shown as typed
    agree, decline, _ = st.columns([1, 1, 3])
    agree.button("I agree", type="primary", on_click=_start, args=(True,), width="stretch")
    decline.button("I do not agree", on_click=_start, args=(False,), width="stretch")
    st.stop()

item = session.next_item
if item is None:
    code = rating.end_code(settings, session.status)
    if session.status == "declined":
        st.subheader("You chose not to take part")
        st.write("Thank you for your time. No answers were recorded.")
    else:
        st.subheader("Thank you!")
        st.write("Your answers have been saved. You have finished the study.")
    if code:
        st.write("Your completion code:")
        st.code(code, language=None)
    target = settings.redirect(code)
    if target:
        st.link_button("Return to Prolific", target, type="primary", icon=":material/check_circle:")
    st.stop()

if session.done == 0 and not st.session_state.get(STARTED):
    st.subheader("Instructions")
    st.text(settings.instructions)
    st.button("Start", type="primary", on_click=lambda: st.session_state.update({STARTED: True}))
    st.stop()

st.progress(session.done / session.total, text=f"Image {session.done + 1} of {session.total}")
playlist = tuple(sorted({it.stimulus_id for it in session.items}))
png = _faces(str(store.path), playlist).get(item.stimulus_id)
face, side = st.columns([3, 2], vertical_alignment="center")
face.image(png if png is not None else face_image(b"", FACE_SCALE), width=48 * FACE_SCALE)
with side:
    if item.is_check:
        st.markdown(f"**For this image, please press *{item.expected}*.**")  # one of the seven, ours
    else:
        st.markdown("**Which emotion does this face show?**")
    for i, emotion in enumerate(EMOTIONS):
        st.button(emotion, key=f"answer-{emotion}", on_click=_answer, args=(item, emotion),
                  shortcut=str(i + 1), width="stretch")
if st.session_state.get(SHOWN, (None,))[0] != item:
    st.session_state[SHOWN] = (item, time.time())  # the response time counts from here
if TIMINGS and (t0 := st.session_state.pop(T0, None)) is not None:
    with open(TIMINGS, "a") as out:
        out.write(f"{(time.perf_counter() - t0) * 1000:.1f}\n")
