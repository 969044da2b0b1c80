"""The participant page (/rate) and the admin's Crowd study page, headless (AppTest)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_hosted_app import AUTH, person, shown_text

from disfer.access import Actor
from disfer.data import rating
from disfer.emotions import EMOTIONS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ADMIN = Actor("ann@lab.org", "ann", "admin")


def rate(db: Path, monkeypatch, **params) -> AppTest:
    monkeypatch.setenv("DISFER_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app_pages" / "rate.py"), default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def answer_button(at: AppTest, emotion: str):
    return next(b for b in at.button if b.label == emotion)


def votes_of(store, pid: str) -> list[tuple]:
    with store.read() as con:
        return con.execute("SELECT stimulus_id, emotion FROM votes WHERE participant_id = ? ORDER BY answered_at",
                           [pid]).fetchall()


def progress_text(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


def test_consent_declined_shows_its_code_and_stores_no_vote(built_study, monkeypatch):
    rating.save_settings(built_study, rating.RatingSettings(
        consent_text="Do you agree? **bold** <b>x</b> [link](http://e.vil)", code_no_consent="NOCONSENT7"), ADMIN)
    at = rate(built_study.path, monkeypatch, PROLIFIC_PID="5f0c1a2b3c4d5e6f7a8b9c0d", STUDY_ID="s1", SESSION_ID="x1")
    assert not at.exception
    # the admin's text, exactly as typed: st.text, never Markdown or HTML
    assert [t.value for t in at.text] == ["Do you agree? **bold** <b>x</b> [link](http://e.vil)"]
    button(at, "I do not agree").click().run()
    assert "You chose not to take part" in shown_text(at)
    assert [c.value for c in at.code] == ["NOCONSENT7"]
    assert votes_of(built_study, "5f0c1a2b3c4d5e6f7a8b9c0d") == []
    assert rating.session(built_study, "5f0c1a2b3c4d5e6f7a8b9c0d").status == "declined"


def test_agree_start_answer_and_resume_after_a_reload(built_study, monkeypatch):
    at = rate(built_study.path, monkeypatch, pid="reloader")
    button(at, "I agree").click().run()
    assert [s.value for s in at.subheader] == ["Instructions"]
    button(at, "Start").click().run()
    assert [b.label for b in at.button] == list(EMOTIONS)
    assert len(at.image) == 1 and progress_text(at).startswith("Image 1 of ")
    plan = rating.session(built_study, "reloader").items
    for k in range(5):
        expected = plan[k].expected if plan[k].is_check else "fear"
        answer_button(at, expected).click().run()
        assert not at.exception and progress_text(at).startswith(f"Image {k + 2} of ")
    stored = votes_of(built_study, "reloader")
    assert [sid for sid, _ in stored] == [it.stimulus_id for it in plan[:5] if not it.is_check]
    # the browser reloaded: a new session with the same link resumes at image 6, with no instructions
    again = rate(built_study.path, monkeypatch, pid="reloader")
    assert progress_text(again).startswith("Image 6 of ") and not at.subheader


def test_the_check_screen_asks_for_its_emotion_and_is_no_vote(built_study, monkeypatch):
    rating.save_settings(built_study, rating.RatingSettings(checks=1), ADMIN)
    at = rate(built_study.path, monkeypatch, pid="checked")
    button(at, "I agree").click().run()
    button(at, "Start").click().run()
    plan = rating.session(built_study, "checked").items
    k = next(i for i, it in enumerate(plan) if it.is_check)
    for _ in range(k):
        answer_button(at, "anger").click().run()
    assert f"please press *{plan[k].expected}*" in shown_text(at)
    answer_button(at, plan[k].expected).click().run()
    assert len(votes_of(built_study, "checked")) == k  # the check is not among the votes
    with built_study.read() as con:
        assert con.execute("SELECT answered FROM attention_checks").fetchall() == [(plan[k].expected,)]


def test_the_end_shows_the_completion_code_and_the_way_back(built_study, monkeypatch):
    rating.save_settings(built_study, rating.RatingSettings(checks=0, code_completed="C0MPLETE"), ADMIN)
    at = rate(built_study.path, monkeypatch, pid="finisher")
    button(at, "I agree").click().run()
    button(at, "Start").click().run()
    for _ in range(28):
        answer_button(at, "happiness").click().run()
    assert "Thank you!" in shown_text(at) and [c.value for c in at.code] == ["C0MPLETE"]
    assert len(votes_of(built_study, "finisher")) == 28
    link = at.get("link_button")[0].proto
    assert link.url == "https://app.prolific.com/submissions/complete?cc=C0MPLETE"


@pytest.mark.parametrize("value", ["<script>alert(1)</script>", "x" * 10_000, "a\x00b", "'; DROP TABLE votes; --"])
def test_a_tampered_link_is_refused_in_one_line_and_nothing_is_stored(built_study, monkeypatch, value):
    at = rate(built_study.path, monkeypatch, PROLIFIC_PID=value)
    assert not at.exception
    assert [e.value for e in at.error] == ["This study link is not valid. Please open the study again from "
                                           "where you found it."]
    assert not at.button and value not in shown_text(at)
    with built_study.read() as con:
        assert con.execute("SELECT count(*) FROM participants").fetchone()[0] == 0


def test_a_link_without_an_id_gets_an_anonymous_one_kept_in_the_address(built_study, monkeypatch):
    at = rate(built_study.path, monkeypatch)
    pid = at.query_params["pid"]
    pid = pid[0] if isinstance(pid, list) else pid
    assert pid.startswith("anon-")
    button(at, "I agree").click().run()
    assert rating.session(built_study, pid).status == "rating"


def test_a_full_study_says_so_to_the_participant(built_study, monkeypatch):
    for p in range(1, 11):
        rating.set_playlist_closed(built_study, p, True, ADMIN)
    at = rate(built_study.path, monkeypatch, pid="toolate")
    button(at, "I agree").click().run()
    assert "The study is not open: no playlist is open for rating." in [w.value for w in at.warning]
    assert rating.session(built_study, "toolate") is None


# -- hosted: /rate is public, the admin page is an admin's ------------------------------------------------

def hosted(db: Path, monkeypatch, user: dict | None) -> AppTest:
    monkeypatch.setenv("DISFER_DB", str(db))
    monkeypatch.setenv("DISFER_HOSTED", "1")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90)
    at.secrets["auth"] = AUTH
    at.user = user or {"is_logged_in": False}
    return at.run()


def test_hosted_the_rating_page_needs_no_sign_in_and_shows_nothing_else(built_study, monkeypatch):
    at = hosted(built_study.path, monkeypatch, None)
    assert [b.label for b in at.button] == ["Sign in"]
    at.query_params["pid"] = "guest1"
    at.switch_page("app_pages/rate.py").run()
    assert not at.exception
    assert [b.label for b in at.button] == ["I agree", "I do not agree"]
    assert not at.sidebar.button and not at.metric and not at.dataframe


def test_the_crowd_study_page_is_an_admins(built_study, monkeypatch):
    for role in ("viewer", "curator", "lead"):
        at = hosted(built_study.path, monkeypatch, person(role))
        with pytest.raises(ValueError):  # not in their navigation
            at.switch_page("app_pages/study.py")
    at = hosted(built_study.path, monkeypatch, person("admin"))
    at.switch_page("app_pages/study.py").run()
    assert not at.exception and [t.value for t in at.title] == ["Crowd study"]


def test_the_admin_page_shows_progress_saves_settings_and_closes_playlists(built_study, monkeypatch):
    rating.save_settings(built_study, rating.RatingSettings(checks=0), ADMIN)
    rating.start(built_study, rating.Arrival("one", {}), True)
    s = rating.session(built_study, "one")
    while s.next_item:
        s = rating.answer(built_study, "one", s.next_item, "anger", 800.0)
    monkeypatch.setenv("DISFER_DB", str(built_study.path))
    at = AppTest.from_file(str(ROOT / "app_pages" / "study.py"), default_timeout=60).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Complete"] == "1" and metrics["Failure rate"] == "not measured yet"
    assert metrics["Time per image"] == "0.8 s"
    table = at.dataframe[0].value.set_index("playlist_id")
    assert table.loc[1, "complete"] == 1 and table.loc[2, "complete"] == 0
    assert "/rate?PROLIFIC_PID={{%PROLIFIC_PID%}}" in at.code[0].value
    at.text_input[0].set_value("DONE-42")
    at.number_input[2].set_value(30)
    at.button[-1].click().run()  # Save settings
    assert [s.value for s in at.success] == ["Settings saved."]
    got = rating.read_settings(built_study)
    assert (got.code_completed, got.target) == ("DONE-42", 30)
    at.selectbox[0].set_value(4).run()
    button(at, "Close").click().run()
    assert rating.progress(built_study).set_index("playlist_id").loc[4, "closed"]
    at.text_input[0].set_value("bad code!")
    at.button[-1].click().run()
    assert any("code completed" in e.value for e in at.error)
    assert rating.read_settings(built_study).code_completed == "DONE-42"
