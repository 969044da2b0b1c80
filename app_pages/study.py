"""Crowd study (admin): run the rating study inside DisFER Studio. The link to paste into Prolific,
live progress per playlist (complete, in progress, abandoned, toward the target), closing and
reopening playlists, attention-check failures, the median time per image, and the study's
settings (consent, instructions, codes, checks, target). Rules: disfer.data.rating."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from app_common import get_store, md, show_table
from app_identity import current_actor, require_page
from disfer.data import rating

require_page("settings")
store = get_store()
st.title("Crowd study")
st.caption("Participants rate the faces of one playlist each at the study link; their votes land in the "
           "store as they answer, and every analysis page fills in as the study runs.")

progress = rating.progress(store)  # not cached: "abandoned" changes with the clock
if progress.empty:
    st.info("No playlists yet, so the study cannot open. Make them with `disfer playlists` "
            "(21 playlists of 40, as in the paper).", icon=":material/info:")
    st.stop()

settings = rating.read_settings(store)
# The dashboard's address as the admin's browser sees it (streamlit drops this page's own path).
base = (st.context.url or "http://localhost:8501").rstrip("/").removesuffix("/study")
st.subheader("Study link")
st.caption("Paste this into Prolific as the study URL; Prolific fills in each participant's ids. "
           "Other recruiters: `/rate?pid=ID`; without an id, each visitor gets an anonymous one.")
st.code(rating.study_link(base), language=None, wrap_lines=True)

summary = rating.summary(store)
# Counts in one row, the two rates in a row of their own: "not measured yet" needs a wide cell
# (six to a row cut it to "not me…" at 1400 pixels).
cells = st.columns(4)
cells[0].metric("Complete", summary["complete"])
cells[1].metric("In progress", summary["rating"])
cells[2].metric("Failed checks", summary["failed"])
cells[3].metric("Declined", summary["declined"])
cells = st.columns(2)
cells[0].metric("Failure rate", "not measured yet" if summary["failure_rate"] is None
                else f"{summary['failure_rate']:.0%}", help="failed the attention checks, of those who finished")
cells[1].metric("Time per image", "not measured yet" if summary["median_rt_ms"] is None
                else f"{summary['median_rt_ms'] / 1000:.1f} s", help="median, from the image shown to the answer")

st.subheader("Progress per playlist")
st.caption(f"Target: {settings.target} complete ratings per playlist. A session silent for "
           f"{settings.abandon_minutes} minutes counts as abandoned and frees its place.")
show_table(progress, "rating_progress", column_config={
    "playlist_id": st.column_config.NumberColumn("playlist", format="%d"),
    "in_progress": "in progress",
    "toward_target": st.column_config.ProgressColumn("toward target", min_value=0.0, max_value=1.0, format="percent"),
})

actor = current_actor()


def _set_closed(closed: bool) -> None:
    try:
        rating.set_playlist_closed(store, int(st.session_state["close_pick"]), closed, actor)
    except rating.RatingError as err:
        st.session_state["study_problem"] = str(err)


pick, close, reopen = st.columns([2, 1, 1], vertical_alignment="bottom")
pick.selectbox("Playlist", progress["playlist_id"].tolist(), key="close_pick",
               format_func=lambda p: f"{p} (closed)" if progress.set_index("playlist_id").loc[p, "closed"] else str(p))
close.button("Close", on_click=_set_closed, args=(True,), help="never assigned again; its votes stay")
reopen.button("Reopen", on_click=_set_closed, args=(False,))
if problem := st.session_state.pop("study_problem", None):
    st.error(md(problem))

st.subheader("Settings")
with st.form("rating_settings"):
    consent = st.text_area("Consent text", settings.consent_text, height=140)
    instructions = st.text_area("Instructions", settings.instructions, height=100)
    codes = st.columns(3)
    done = codes[0].text_input("Completion code", settings.code_completed)
    failed = codes[1].text_input("Code: failed attention checks", settings.code_failed)
    declined = codes[2].text_input("Code: no consent", settings.code_no_consent)
    url = st.text_input("Completion URL (the code is added as ?cc=CODE; empty: show the code only)",
                        settings.completion_url)
    numbers = st.columns(4)
    checks = numbers[0].number_input("Attention checks", 0, 10, settings.checks)
    fail_after = numbers[1].number_input("Fail after (wrong checks)", 1, 10, settings.fail_after)
    target = numbers[2].number_input("Target ratings per playlist", 1, 100_000, settings.target)
    abandon = numbers[3].number_input("Abandoned after (minutes)", 5, 7 * 24 * 60, settings.abandon_minutes)
    exclude = st.toggle("Leave participants who failed the checks out of the analysis", settings.exclude_failed)
    if st.form_submit_button("Save settings", type="primary"):
        wanted = replace(settings, consent_text=consent, instructions=instructions, code_completed=done.strip(),
                         code_failed=failed.strip(), code_no_consent=declined.strip(), completion_url=url.strip(),
                         checks=int(checks), fail_after=int(fail_after), target=int(target),
                         abandon_minutes=int(abandon), exclude_failed=bool(exclude))
        try:
            rating.save_settings(store, wanted, actor)
            st.success("Settings saved.")
        except rating.RatingError as err:
            st.error(md(err))
