"""Curation as a team (issue 16): soft locks, the target number of curators per face, a lead's
review of disagreements (the same events from the ledger and the CLI), and curation's writes
leaving the dashboard's Study alone."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from test_curation import add_sources, gt_row, n_events

from disfer import curation, ledger
from disfer.access import AccessDenied, Actor
from disfer.cli import main
from disfer.errors import ConfigError
from disfer.ledger.locks import utc_now

CURATOR = Actor("cat@lab.org", "sub-cat", "curator")
LEAD = Actor("lea@lab.org", "sub-lea", "lead")


@pytest.fixture
def ranked(store):
    # The audit's order by hand (see test_curation.test_review_queue_follows_the_label_audit):
    # 4 (all 10 versions wrong), 3 (6 contradicted), 2 (4), 1 (none).
    add_sources(store, ["neutral", "anger", "anger", "happiness"],
                votes={3: ["fear"] * 10, 2: ["disgust"] * 6 + ["anger"] * 4,
                       1: ["fear"] * 4 + ["anger"] * 6, 0: ["neutral"] * 10})
    return store


@pytest.fixture
def disputed(ranked):
    """Source 3: ann says anger, bob disgust (disputed); source 2: ann alone."""
    ann = ledger.record_decision(ranked, 3, ["anger"], None, "confirmed", "ann")
    bob = ledger.record_decision(ranked, 3, ["disgust"], None, "relabeled", "bob")
    ledger.record_decision(ranked, 2, ["anger"], None, "confirmed", "ann")
    assert gt_row(ranked, 3)["status"] == "disputed"
    return ranked, {"ann": ann, "bob": bob}


# -- the cache keys ------------------------------------------------------------------------------
def test_curation_writes_leave_the_study_counter_alone(ranked):
    change, study = ranked.counters()
    ledger.record_decision(ranked, 1, ["neutral"], None, "confirmed", "ann")
    ledger.set_target_curators(ranked, 2, "lea")
    assert ranked.counters() == (change + 2, study)  # the curation pages see them; the Study stays
    ledger.mark_open(ranked, 1, "ann")
    assert ranked.counters() == (change + 2, study)  # a mark moves nothing
    with ranked.write() as con:  # anything else (votes, predictions, ...) reloads the Study
        con.execute("INSERT INTO participants (participant_id) VALUES ('late')")
    assert ranked.counters() == (change + 3, study + 1)


# -- soft locks ------------------------------------------------------------------------------------
def test_a_mark_holds_a_face_for_five_minutes_and_moves_with_its_curator(ranked):
    t0 = utc_now()
    marks = ledger.mark_open(ranked, 3, "bob", now=t0)
    assert {c: m.source_id for c, m in marks.items()} == {"bob": 3}
    assert ledger.held_by_others(marks, "ann") == {3: ["bob"]}
    assert ledger.held_by_others(marks, "bob") == {}  # my own mark holds nothing from me
    later = t0 + timedelta(minutes=ledger.LOCK_MINUTES) - timedelta(seconds=1)
    assert ledger.held_by_others(ledger.open_marks(ranked, now=later), "ann") == {3: ["bob"]}
    lapsed = t0 + timedelta(minutes=ledger.LOCK_MINUTES, seconds=1)
    assert ledger.open_marks(ranked, now=lapsed) == {}
    ledger.mark_open(ranked, 2, "bob", now=t0)  # bob moves on: 3 is free again
    ledger.mark_open(ranked, 2, "cat", now=t0)
    assert ledger.held_by_others(ledger.open_marks(ranked, now=t0), "ann") == {2: ["bob", "cat"]}


def test_a_curator_may_not_open_a_held_face_a_lead_and_its_holder_may(ranked):
    marks = ledger.mark_open(ranked, 3, "bob")
    assert not ledger.may_open(3, marks, CURATOR.email, CURATOR)
    assert ledger.may_open(2, marks, CURATOR.email, CURATOR)
    assert ledger.may_open(3, marks, LEAD.email, LEAD)
    assert ledger.may_open(3, marks, "bob", Actor("bob", "sub-bob", "curator"))


def test_next_free_passes_by_held_faces_both_ways():
    order = [4, 3, 2, 1]
    assert ledger.next_free(order, 0, +1, {3}) == 2
    assert ledger.next_free(order, 2, -1, {3}) == 4
    assert ledger.next_free(order, -1, +1, set()) == 4
    assert ledger.next_free(order, 2, +1, {1}) is None


def test_the_cli_queue_says_who_is_reviewing_what(ranked, capsys):
    ledger.mark_open(ranked, 3, "bob")
    assert main(["--db", str(ranked.path), "curate", "queue"]) == 0
    lines = {int(line.split()[0]): line for line in capsys.readouterr().out.splitlines()}
    assert lines[3].endswith("[being reviewed by bob]") and "being reviewed" not in lines[4]


# -- the target number of curators -------------------------------------------------------------------
def test_faces_below_the_target_come_first_each_group_in_the_audits_order(ranked):
    ledger.record_decision(ranked, 4, ["happiness"], None, "confirmed", "ann")
    ledger.record_decision(ranked, 4, ["happiness"], None, "confirmed", "bob")
    ledger.record_decision(ranked, 2, ["anger"], None, "confirmed", "ann")
    # Curators per face: 4 -> 2, 2 -> 1, 3 and 1 -> 0; the audit's order 4, 3, 2, 1.
    assert ledger.target_curators(ranked) == 1
    assert list(curation.review_queue(ranked)["source_id"]) == [3, 1, 4, 2]
    ledger.set_target_curators(ranked, 2, LEAD)
    queue = curation.review_queue(ranked)
    assert list(queue["source_id"]) == [3, 2, 1, 4]
    assert curation.queue_progress(queue).below_target == 3
    ledger.resolve(ranked, 3, ["anger"], None, "confirmed", "lea")  # a lead settled it: done
    assert list(curation.review_queue(ranked)["source_id"]) == [2, 1, 4, 3]
    assert "2 faces below the target number of curators first" in curation.queue_order(curation.review_queue(ranked))


def test_the_target_is_a_leads_setting_and_a_whole_number(ranked, capsys):
    with pytest.raises(AccessDenied, match="may not resolve"):
        ledger.set_target_curators(ranked, 2, CURATOR)
    for bad in (0, "two", 99):
        with pytest.raises(ConfigError, match="target curators per face"):
            ledger.set_target_curators(ranked, bad, "lea")
    db = ["--db", str(ranked.path)]
    assert main(db + ["curate", "target"]) == 0 and capsys.readouterr().out == "target: 1 curators per face\n"
    assert main(db + ["curate", "target", "3", "--lead", "lea"]) == 0
    assert capsys.readouterr().out == "target: 3 curators per face\n" and ledger.target_curators(ranked) == 3


# -- a lead's review ------------------------------------------------------------------------------
def test_accept_takes_one_curators_decision_as_it_is_signed_by_the_lead(disputed):
    store, events = disputed
    event = ledger.accept(store, 3, "bob", LEAD, note="the brows")
    last = ledger.event_log(store).iloc[-1]
    assert last["event_id"] == event
    assert (last["curator"], last["subject"], last["role"], last["review"], last["accepts"]) == \
        ("lea@lab.org", "sub-lea", "lead", "accept", events["bob"])
    assert (last["labels"], last["status"], last["note"]) == (["disgust"], "relabeled", "the brows")
    row = gt_row(store, 3)
    assert row["resolved"] and row["labels"] == ["disgust"] and row["status"] == "relabeled"


def test_fix_and_accept_records_the_leads_own_labels(disputed):
    store, _ = disputed
    ledger.fix(store, 3, ["anger", "disgust"], [0.5, 0.5], "ambiguous", LEAD)
    last = ledger.event_log(store).iloc[-1]
    assert (last["curator"], last["role"], last["review"], last["accepts"]) == ("lea@lab.org", "lead", "fix", None)
    row = gt_row(store, 3)
    assert row["resolved"] and row["labels"] == ["anger", "disgust"] and row["weights"] == [0.5, 0.5]


def test_reject_sends_the_face_back_undecided_to_its_curators(disputed):
    store, _ = disputed
    ledger.reject(store, 3, LEAD, note="look again")
    last = ledger.event_log(store).iloc[-1]
    assert (last["curator"], last["role"], last["review"], last["status"], last["labels"]) == \
        ("lea@lab.org", "lead", "reject", "rejected", [])
    assert gt_row(store, 3) is None  # no ground truth: every earlier decision on it stopped counting
    queue = curation.review_queue(store).set_index("source_id")
    assert queue.loc[3, "status"] == "uncurated" and queue.loc[3, "curators"] == []
    assert 3 in set(curation.review_queue(store, unreviewed_by="ann")["source_id"])
    assert gt_row(store, 2)["curator"] == "ann"  # other faces untouched
    # Decided again after the rejection: counts. Undoing the rejection brings the old ones back.
    ledger.record_decision(store, 3, ["anger"], None, "confirmed", "ann")
    assert gt_row(store, 3)["n_curators"] == 1
    ledger.undo(store, ledger.last_event_id(store, LEAD.email), LEAD)
    assert gt_row(store, 3)["n_curators"] == 2 and gt_row(store, 3)["status"] == "disputed"


@pytest.mark.parametrize("outcome, kwargs", [("accept", {"curator": "ann"}),
                                             ("fix", {"labels": ["anger"], "status": "confirmed"}),
                                             ("reject", {})])
def test_each_review_is_refused_to_a_curator_and_writes_nothing(disputed, outcome, kwargs):
    store, _ = disputed
    before = n_events(store)
    with pytest.raises(AccessDenied, match="cat@lab.org .curator. may not review"):
        ledger.review(store, 3, outcome, CURATOR, **kwargs)
    assert n_events(store) == before


def test_a_review_needs_something_to_review(disputed):
    store, _ = disputed
    with pytest.raises(ConfigError, match="'cat' has no live decision"):
        ledger.accept(store, 3, "cat", LEAD)
    with pytest.raises(ConfigError, match="no live decision to send back"):
        ledger.reject(store, 1, LEAD)
    with pytest.raises(ConfigError, match="unknown review outcome"):
        ledger.review(store, 3, "shrug", LEAD)


def _events(store) -> list[tuple]:
    log = ledger.event_log(store)
    return [(e["source_id"], e["curator"], e["subject"], e["role"], e["status"], e["labels"], e["weights"],
             e["note"], e["review"], None if e["accepts"] is None else e["accepts"] - e["event_id"])
            for e in log.to_dict("records")]


def test_the_cli_writes_the_same_review_events_as_the_page(tmp_path, capsys):
    """`disfer curate review` and `ledger.review` (the page's buttons) on two copies of one study."""
    from disfer.store import Store

    stores = []
    for name in ("page", "cli"):
        store = Store(tmp_path / f"{name}.duckdb", lock_timeout=10)
        add_sources(store, ["neutral", "anger", "anger", "happiness"])
        for sid, labels, status in ((1, ["neutral"], "confirmed"), (2, ["anger"], "confirmed"),
                                    (3, ["anger"], "confirmed")):
            ledger.record_decision(store, sid, labels, None, status, "ann")
            ledger.record_decision(store, sid, ["fear"], None, "relabeled", "bob")
        stores.append(store)
    page, cli = stores
    ledger.review(page, 1, "accept", "lea", curator="bob", note="ok")
    ledger.review(page, 2, "fix", "lea", labels=["anger", "fear"], weights=[0.7, 0.3], status="ambiguous")
    ledger.review(page, 3, "reject", "lea")
    db = ["--db", str(cli.path)]
    assert main(db + ["curate", "review", "1", "accept", "--curator", "bob", "--lead", "lea", "--note", "ok"]) == 0
    assert main(db + ["curate", "review", "2", "fix", "--labels", "anger,fear", "--weights", "0.7,0.3",
                      "--status", "ambiguous", "--lead", "lea"]) == 0
    assert main(db + ["curate", "review", "3", "reject", "--lead", "lea"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("source 1 accepted bob's decision") and out[2].endswith("source 3 sent back to its curators")
    assert _events(cli) == _events(page)
    assert [e[8] for e in _events(cli)][-3:] == ["accept", "fix", "reject"]
    assert main(db + ["curate", "log", "--json"]) == 0
    last = [json.loads(line) for line in capsys.readouterr().out.splitlines()][-3:]
    assert [(e["review"], e["curator"]) for e in last] == [("accept", "lea"), ("fix", "lea"), ("reject", "lea")]
    assert last[0]["accepts"] is not None
