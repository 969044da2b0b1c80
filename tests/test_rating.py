"""The crowd study run inside DisFER Studio (disfer.data.rating): assignment, answers, resume,
attention checks, and the refusals of whatever a participant's browser might send."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

import duckdb
import pytest

from disfer.access import AccessDenied, Actor
from disfer.analysis import load_study, study_report
from disfer.data import rating
from disfer.data.rating import Arrival, Item, RatingError, RatingSettings
from disfer.emotions import EMOTIONS
from disfer.store import CONNECT_CONFIG

ADMIN = Actor("ann@lab.org", "ann", "admin")
PLAYLISTS = 10  # the built_study fixture: 10 playlists of 28


def arrive(store, pid: str, consent: bool = True) -> rating.Session:
    return rating.start(store, Arrival(pid, {"recruiter": "link"}), consent)


def finish(store, pid: str, fail_checks: bool = False) -> rating.Session:
    """Answer every screen of `pid`'s plan: faces with anger, checks as asked (or wrongly)."""
    s = rating.session(store, pid)
    while s.next_item is not None:
        item = s.next_item
        if item.is_check:
            wrong = EMOTIONS[(EMOTIONS.index(item.expected) + 1) % 7]
            choice = wrong if fail_checks else item.expected
        else:
            choice = "anger"
        s = rating.answer(store, pid, item, choice, 1234.0)
    return s


def counts(store) -> tuple:
    with store.read() as con:
        return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("votes", "participants", "rating_sessions", "attention_checks"))


def playlist_images(store, playlist_id: int) -> set[str]:
    with store.read() as con:
        return {r[0] for r in con.execute("SELECT stimulus_id FROM playlists WHERE playlist_id = ?",
                                          [playlist_id]).fetchall()}


# -- the plan --------------------------------------------------------------------------------------

def test_plan_shows_every_image_once_with_checks_spread_inside():
    ids = [f"s{i}" for i in range(40)]
    items = rating.plan(ids, checks=3, seed=7)
    faces = [it.stimulus_id for it in items if not it.is_check]
    checks = [(i, it) for i, it in enumerate(items) if it.is_check]
    assert sorted(faces) == sorted(ids) and faces != ids  # every image once, shuffled
    assert [it.check_no for _, it in checks] == [1, 2, 3]
    assert all(0 < i < len(items) - 1 for i, _ in checks)  # never first or last
    assert all(it.stimulus_id in ids and it.expected in EMOTIONS for _, it in checks)
    # spread: about a quarter of the way apart
    assert [i for i, _ in checks] == [10, 21, 32]
    assert rating.plan(ids, 3, 7) == items and rating.plan(ids, 3, 8) != items


# -- consent and assignment --------------------------------------------------------------------------

def test_declining_consent_ends_with_its_code_and_stores_no_vote(built_study):
    rating.save_settings(built_study, RatingSettings(code_no_consent="NOCONS1", code_completed="DONE1"), ADMIN)
    s = arrive(built_study, "p-decline", consent=False)
    assert s.status == "declined" and s.next_item is None and s.playlist_id is None
    assert rating.end_code(rating.read_settings(built_study), s.status) == "NOCONS1"
    assert rating.read_settings(built_study).redirect("NOCONS1") == \
        "https://app.prolific.com/submissions/complete?cc=NOCONS1"
    assert counts(built_study)[0] == 0
    # coming back and saying yes now changes nothing: the answer was recorded
    assert arrive(built_study, "p-decline", consent=True).status == "declined"


def test_each_arrival_gets_the_open_playlist_with_fewest_ratings(built_study):
    got = [arrive(built_study, f"p{i}").playlist_id for i in range(PLAYLISTS + 2)]
    assert got[:PLAYLISTS] == list(range(1, PLAYLISTS + 1))  # all empty: lowest id first, then the next
    assert got[PLAYLISTS:] == [1, 2]  # every playlist holds one: round again
    s = rating.session(built_study, "p3")
    assert {it.stimulus_id for it in s.items if not it.is_check} == playlist_images(built_study, 4)


def test_two_arrivals_at_once_get_different_playlists(built_study):
    got, errors = {}, []
    barrier = threading.Barrier(PLAYLISTS)

    def go(i):
        try:
            barrier.wait()
            got[i] = arrive(type(built_study)(built_study.path, lock_timeout=30), f"together{i}").playlist_id
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(PLAYLISTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(got.values()) == list(range(1, PLAYLISTS + 1))


def test_a_returning_id_resumes_its_own_playlist_at_the_next_image(built_study):
    first = arrive(built_study, "back")
    s = first
    for _ in range(5):
        s = rating.answer(built_study, "back", s.next_item, "fear", 900.0)
    arrive(built_study, "other")
    again = arrive(built_study, "back")  # the link opened again (a reload, a new tab)
    assert again.playlist_id == first.playlist_id and again.items == first.items
    assert again.done == 5 and again.next_item == first.items[5]


def test_a_closed_playlist_is_never_assigned(built_study):
    for p in range(1, PLAYLISTS):
        rating.set_playlist_closed(built_study, p, True, ADMIN)
    assert {arrive(built_study, f"c{i}").playlist_id for i in range(4)} == {PLAYLISTS}
    rating.set_playlist_closed(built_study, 3, False, ADMIN)
    assert arrive(built_study, "c-reopened").playlist_id == 3
    with pytest.raises(AccessDenied):
        rating.set_playlist_closed(built_study, 3, True, Actor("v@lab.org", "v", "viewer"))


def test_an_abandoned_session_frees_its_place_and_a_full_study_says_so(built_study):
    rating.save_settings(built_study, RatingSettings(target=1, checks=0), ADMIN)
    for i in range(PLAYLISTS):
        arrive(built_study, f"f{i}")
    with pytest.raises(RatingError, match="full"):
        arrive(built_study, "late")
    long_ago = datetime.now() - timedelta(hours=3)
    with built_study.write() as con:  # f4 opened playlist 5 three hours ago and never came back
        con.execute("UPDATE rating_sessions SET last_seen_at = ? WHERE participant_id = 'f4'", [long_ago])
    assert arrive(built_study, "late").playlist_id == 5
    assert rating.progress(built_study).set_index("playlist_id").loc[5, "abandoned"] == 1


# -- answers ---------------------------------------------------------------------------------------------

def test_a_whole_playlist_lands_as_votes_and_checks_apart(built_study):
    rating.save_settings(built_study, RatingSettings(checks=3), ADMIN)
    s = arrive(built_study, "whole")
    end = finish(built_study, "whole")
    assert end.status == "complete" and end.next_item is None
    with built_study.read() as con:
        votes = con.execute("SELECT stimulus_id, emotion, rt_ms FROM votes WHERE participant_id = 'whole'").fetchall()
        checks = con.execute("SELECT count(*) FROM attention_checks WHERE participant_id = 'whole'").fetchone()[0]
    assert {v[0] for v in votes} == playlist_images(built_study, s.playlist_id) and len(votes) == 28
    assert {v[1] for v in votes} == {"anger"} and {v[2] for v in votes} == {1234.0}
    assert checks == 3  # never among the votes
    study = load_study(built_study)
    assert len(study.vote_stim) == 28 and list(study.participants) == ["whole"]


def test_a_double_click_or_a_replay_stores_one_vote(built_study):
    s = arrive(built_study, "twice")
    item = s.next_item
    after = rating.answer(built_study, "twice", item, "sadness", 500.0)
    again = rating.answer(built_study, "twice", item, "surprise", 400.0)  # replayed with another answer
    assert after.done == again.done == 1
    with built_study.read() as con:
        assert con.execute("SELECT emotion FROM votes WHERE participant_id = 'twice'").fetchall() == [("sadness",)]


@pytest.mark.parametrize("case", ["not in the playlist", "a check not in the plan", "not an emotion",
                                  "unknown participant", "not the next screen", "declined"])
def test_answers_a_participant_cannot_give_are_refused_and_store_nothing(built_study, case):
    rating.save_settings(built_study, RatingSettings(checks=2), ADMIN)
    s = arrive(built_study, "bad")
    outside = sorted(playlist_images(built_study, 2))[0]
    item, emotion, pid = s.next_item, "anger", "bad"
    if case == "not in the playlist":
        item = Item(outside)
    elif case == "a check not in the plan":
        item = next(Item(it.stimulus_id, it.check_no, e) for it in s.items if it.is_check
                    for e in EMOTIONS if e != it.expected)
    elif case == "not an emotion":
        emotion = "contempt"
    elif case == "unknown participant":
        pid = "nobody"
    elif case == "not the next screen":
        item = s.items[3]  # skipping ahead
    else:
        arrive(built_study, "no", consent=False)
        pid = "no"
    before = counts(built_study)
    with pytest.raises(RatingError):
        rating.answer(built_study, pid, item, emotion, 100.0)
    assert counts(built_study) == before


def test_an_answer_after_the_end_stores_nothing(built_study):
    s = arrive(built_study, "ended")
    first = s.next_item
    end = finish(built_study, "ended")
    before = counts(built_study)
    assert rating.answer(built_study, "ended", first, "surprise", 10.0) == end  # a late replay: nothing new
    assert counts(built_study) == before
    with built_study.read() as con:
        assert con.execute("SELECT emotion FROM votes WHERE participant_id = 'ended' AND stimulus_id = ?",
                           [first.stimulus_id]).fetchone() == ("anger",)


@pytest.mark.parametrize("value", ["a'b", "<b>x</b>", "x" * 10_000, "a\x00b", "a b", "é"])
def test_tampered_link_parameters_are_refused(value):
    for name in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "pid"):
        with pytest.raises(RatingError, match=f"link's {name} is not a valid id"):
            rating.arrival_from_link({"PROLIFIC_PID": "5f0c1a2b3c4d5e6f7a8b9c0d", name: value})


def test_link_parameters_name_the_participant():
    prolific = rating.arrival_from_link({"PROLIFIC_PID": "5f0c1a2b3c4d5e6f7a8b9c0d", "STUDY_ID": "st1",
                                         "SESSION_ID": "se1", "other": "ignored"})
    assert prolific.participant_id == "5f0c1a2b3c4d5e6f7a8b9c0d" and not prolific.anonymous
    assert prolific.attributes == {"recruiter": "prolific", "PROLIFIC_PID": "5f0c1a2b3c4d5e6f7a8b9c0d",
                                   "STUDY_ID": "st1", "SESSION_ID": "se1"}
    assert rating.arrival_from_link({"pid": "mturk-77"}).participant_id == "mturk-77"
    a, b = rating.arrival_from_link({}), rating.arrival_from_link({})
    assert a.anonymous and a.participant_id.startswith("anon-") and a.participant_id != b.participant_id


def test_an_id_already_in_the_study_cannot_start_again(built_study):
    with built_study.write() as con:
        con.execute("INSERT INTO participants (participant_id, crowd) VALUES ('imported', 'study')")
    with pytest.raises(RatingError, match="already taken part"):
        arrive(built_study, "imported")
    assert counts(built_study)[2] == 0


# -- attention checks and the analysis -------------------------------------------------------------------

def test_a_failed_participant_is_left_out_of_the_analysis_unless_asked(built_study):
    rating.save_settings(built_study, RatingSettings(checks=2, code_failed="FAIL1"), ADMIN)
    arrive(built_study, "good")
    arrive(built_study, "careless")
    assert finish(built_study, "good").status == "complete"
    assert finish(built_study, "careless", fail_checks=True).status == "failed"
    assert rating.end_code(rating.read_settings(built_study), "failed") == "FAIL1"
    with built_study.read() as con:  # their votes are kept
        assert con.execute("SELECT count(*) FROM votes WHERE participant_id = 'careless'").fetchone()[0] == 28
    assert list(load_study(built_study).participants) == ["good"]
    assert sorted(load_study(built_study, include_failed=True).participants) == ["careless", "good"]
    report = study_report(built_study, bootstrap=0, consensus=False)
    assert report["counts"]["participants"] == 1 and report["counts"]["votes"] == 28
    assert report["counts"]["participants_left_out"] == 1
    report = study_report(built_study, bootstrap=0, consensus=False, include_failed=True)
    assert report["counts"]["participants"] == 2 and report["counts"]["votes"] == 56
    assert report["counts"]["participants_left_out"] == 0
    # the study's setting decides the default
    rating.save_settings(built_study, RatingSettings(checks=2, exclude_failed=False), ADMIN)
    assert len(load_study(built_study).participants) == 2


def test_one_wrong_check_of_two_does_not_fail(built_study):
    rating.save_settings(built_study, RatingSettings(checks=2, fail_after=2), ADMIN)
    s = arrive(built_study, "once")
    wrong_once = False
    while s.next_item is not None:
        item = s.next_item
        choice = "anger"
        if item.is_check:
            choice = item.expected if wrong_once else EMOTIONS[(EMOTIONS.index(item.expected) + 1) % 7]
            wrong_once = True
        s = rating.answer(built_study, "once", item, choice, None)
    assert s.status == "complete" and s.failed_checks == 1


def test_summary_and_progress_say_what_is_measured(built_study):
    empty = rating.summary(built_study)
    assert empty["participants"] == 0 and empty["median_rt_ms"] is None and empty["failure_rate"] is None
    rating.save_settings(built_study, RatingSettings(checks=2), ADMIN)
    arrive(built_study, "a")
    arrive(built_study, "b")
    arrive(built_study, "c", consent=False)
    finish(built_study, "a")
    finish(built_study, "b", fail_checks=True)
    # in progress; on playlist 2, whose only rating failed the checks and so does not count
    assert arrive(built_study, "d").playlist_id == 2
    s = rating.summary(built_study)
    assert (s["participants"], s["complete"], s["failed"], s["declined"], s["rating"]) == (4, 1, 1, 1, 1)
    assert s["failure_rate"] == 0.5 and s["check_error_rate"] == 0.5 and s["median_rt_ms"] == 1234.0
    table = rating.progress(built_study).set_index("playlist_id")
    assert table.loc[1, "complete"] == 1 and table.loc[2, "failed"] == 1 and table.loc[2, "in_progress"] == 1
    assert table["images"].eq(28).all() and table.loc[1, "toward_target"] == pytest.approx(1 / 50)


# -- settings --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, problem", [
    ({"code_completed": "C'1"}, "code completed"),
    ({"completion_url": "javascript:alert(1)"}, "completion URL"),
    ({"completion_url": 'https://x.org/"><b>'}, "completion URL"),
    ({"checks": 11}, "checks"),
    ({"target": 0}, "target"),
    ({"consent_text": " "}, "consent text"),
])
def test_bad_settings_are_refused_and_nothing_is_saved(built_study, change, problem):
    from dataclasses import replace

    with pytest.raises(RatingError, match=problem):
        rating.save_settings(built_study, replace(RatingSettings(), **change), ADMIN)
    assert rating.read_settings(built_study) == RatingSettings()


def test_settings_need_an_admin_and_come_back_as_saved(built_study):
    wanted = RatingSettings(consent_text="Agree?", code_completed="C1", code_failed="F1", code_no_consent="N1",
                            checks=4, target=30, exclude_failed=False)
    with pytest.raises(AccessDenied):
        rating.save_settings(built_study, wanted, Actor("c@lab.org", "c", "curator"))
    rating.save_settings(built_study, wanted, ADMIN)
    assert rating.read_settings(built_study) == wanted


def test_the_study_link_carries_prolifics_placeholders():
    assert rating.study_link("https://fer.lab.org/") == (
        "https://fer.lab.org/rate?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}"
        "&SESSION_ID={{%SESSION_ID%}}")


def test_answers_count_in_the_balance_only_while_live(built_study):
    """Complete and in-progress sessions hold a playlist's place; declined ones never did."""
    arrive(built_study, "x", consent=False)
    assert arrive(built_study, "y").playlist_id == 1
    tally = Counter(arrive(built_study, f"z{i}").playlist_id for i in range(PLAYLISTS - 1))
    assert set(tally) == set(range(2, PLAYLISTS + 1))


def test_no_playlists_means_the_study_is_not_open(store):
    with pytest.raises(RatingError, match="not open"):
        arrive(store, "early")
    assert isinstance(store.path, object)
    with duckdb.connect(str(store.path), read_only=True, config=CONNECT_CONFIG) as con:
        assert con.execute("SELECT count(*) FROM rating_sessions").fetchone()[0] == 0


def test_many_participants_answering_at_once_lose_and_duplicate_nothing(built_study):
    """The load test's small version, without browsers: 10 participants in threads answer their
    whole playlists at the same time, each answer sent twice (a double click)."""
    rating.save_settings(built_study, RatingSettings(checks=2), ADMIN)
    errors = []

    def participant(i):
        try:
            store = type(built_study)(built_study.path, lock_timeout=60)
            s = rating.start(store, Arrival(f"load{i}", {}), True)
            while s.next_item is not None:
                item = s.next_item
                choice = item.expected if item.is_check else EMOTIONS[i % 7]
                rating.answer(store, f"load{i}", item, choice, 700.0)
                s = rating.answer(store, f"load{i}", item, choice, 700.0)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=participant, args=(i,)) for i in range(PLAYLISTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors
    with built_study.read() as con:
        rows = con.execute("SELECT r.participant_id, r.status, r.playlist_id, count(v.stimulus_id),"
                           " count(DISTINCT v.stimulus_id) FROM rating_sessions r JOIN votes v USING (participant_id)"
                           " GROUP BY ALL ORDER BY 1").fetchall()
        checks = con.execute("SELECT count(*) FROM attention_checks").fetchone()[0]
    assert [r[1] for r in rows] == ["complete"] * PLAYLISTS
    assert sorted(r[2] for r in rows) == list(range(1, PLAYLISTS + 1))
    assert all(r[3] == r[4] == 28 for r in rows)  # every image once: none lost, none twice
    assert checks == 2 * PLAYLISTS
