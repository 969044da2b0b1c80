"""Curation: append-only decisions, the ground-truth view, undo, disagreement and resolution, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from disfer import curation, ledger
from disfer.cli import main
from disfer.errors import ConfigError

DISTORTED = [(d, lv) for d in ("gaussian_blur", "gaussian_noise", "salt_pepper") for lv in (1, 2, 3)]
VERSIONS = [("original", 0)] + DISTORTED


def add_sources(store, labels, seed=0, split="PublicTest", votes=None):
    """Sources (one per label) with 10 versions each, written by plain SQL as ingest+build would.

    votes: optional {source_index: [emotion, ...]}: one vote per version, in VERSIONS order.
    Returns the source ids.
    """
    rng = np.random.default_rng(seed)
    rows, stim = [], []
    for i, label in enumerate(labels):
        sid = i + 1
        face = rng.integers(0, 256, size=(48, 48), dtype=np.uint8)
        rows.append({"source_id": sid, "dataset": "fer2013", "original_index": i, "original_label": label,
                     "split": split, "pixels": face.tobytes()})
        for dist, level in VERSIONS:
            noisy = face if dist == "original" else (face // (level + 1)).astype(np.uint8)
            stim.append({"stimulus_id": f"{sid}-{dist}-{level}", "source_id": sid, "distortion": dist,
                         "level": level, "param": float(level), "seed": sid, "pixels": noisy.tobytes()})
    vote_rows = []
    for i, emos in (votes or {}).items():
        for (dist, level), emo in zip(VERSIONS, emos, strict=False):
            vote_rows.append({"participant_id": f"p{len(vote_rows) % 5}", "stimulus_id": f"{i + 1}-{dist}-{level}",
                              "emotion": emo})
    src, st = pd.DataFrame(rows), pd.DataFrame(stim)
    vt = pd.DataFrame(vote_rows, columns=["participant_id", "stimulus_id", "emotion"])
    with store.write() as con:
        con.register("src", src)
        con.register("st", st)
        con.register("vt", vt)
        con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label, split, pixels) "
                    "SELECT source_id, dataset, original_index, original_label, split, pixels FROM src")
        con.execute("INSERT INTO stimuli SELECT stimulus_id, source_id, distortion, level, param, seed, pixels "
                    "FROM st")
        if len(vt):
            con.execute("INSERT INTO participants (participant_id) SELECT DISTINCT participant_id FROM vt")
            con.execute("INSERT INTO votes (participant_id, stimulus_id, emotion) "
                        "SELECT participant_id, stimulus_id, emotion FROM vt")
    return [r["source_id"] for r in rows]


def n_events(store) -> int:
    with store.read() as con:
        return con.execute("SELECT count(*) FROM curation_events").fetchone()[0]


@pytest.fixture
def studied(store):
    add_sources(store, ["happiness", "anger", "sadness", "neutral"])
    return store


def gt_row(store, source_id):
    gt = ledger.current_ground_truth(store).set_index("source_id")
    return gt.loc[source_id] if source_id in gt.index else None


def test_decision_becomes_ground_truth_and_keeps_history(studied):
    first = ledger.record_decision(studied, 1, ["happiness"], None, "confirmed", "ann")
    second = ledger.record_decision(studied, 1, "happiness,neutral", "0.6,0.4", "ambiguous", "ann",
                                      note="smile, but flat eyes")
    row = gt_row(studied, 1)
    assert row["labels"] == ["happiness", "neutral"]
    assert row["weights"] == pytest.approx([0.6, 0.4])
    assert row["status"] == "ambiguous" and row["curator"] == "ann" and row["event_id"] == second
    assert row["primary_label"] == "happiness" and row["original_label"] == "happiness"
    log = ledger.event_log(studied)
    assert list(log["event_id"]) == [first, second]  # append-only: the first decision is still there
    assert log.iloc[1]["note"] == "smile, but flat eyes"
    assert gt_row(studied, 2) is None  # undecided sources are absent from the view


def test_undo_reverts_to_the_previous_decision_and_adds_an_event(studied):
    ledger.record_decision(studied, 2, ["anger"], None, "confirmed", "ann")
    wrong = ledger.record_decision(studied, 2, ["disgust"], None, "relabeled", "ann")
    undo_id = ledger.undo(studied, wrong, "ann")
    assert gt_row(studied, 2)["labels"] == ["anger"]
    log = ledger.event_log(studied).set_index("event_id")
    assert log.loc[undo_id, "status"] == "undo" and log.loc[undo_id, "undoes"] == wrong
    assert log.loc[wrong, "undone_by"] == undo_id
    assert n_events(studied) == 3
    with pytest.raises(ConfigError, match="already undone"):
        ledger.undo(studied, wrong, "ann")
    with pytest.raises(ConfigError, match="itself an undo"):
        ledger.undo(studied, undo_id, "ann")
    ledger.undo(studied, ledger.last_event_id(studied, "ann"), "ann")
    assert gt_row(studied, 2) is None


def test_disagreement_is_disputed_until_a_lead_resolves_it(studied):
    ledger.record_decision(studied, 3, ["sadness"], None, "confirmed", "ann")
    ledger.record_decision(studied, 3, ["fear"], None, "relabeled", "bob")
    row = gt_row(studied, 3)
    assert row["status"] == "disputed" and row["n_curators"] == 2 and not row["resolved"]
    assert row["labels"] == ["fear"]  # provisional: the latest opinion
    res = ledger.resolve(studied, 3, ["sadness", "fear"], [0.5, 0.5], "ambiguous", "lea", note="both")
    row = gt_row(studied, 3)
    assert row["status"] == "ambiguous" and row["resolved"] and row["curator"] == "lea"
    # A curator's later opinion does not overturn the lead's resolution; undoing it reopens the dispute.
    ledger.record_decision(studied, 3, ["fear"], None, "relabeled", "ann")
    assert gt_row(studied, 3)["event_id"] == res
    ledger.undo(studied, res, "lea")
    assert gt_row(studied, 3)["status"] == "relabeled"  # ann now agrees with bob


def test_curator_agreement_kappa_matches_hand_count(studied):
    # ann and bob on 4 sources: agree on 1, 2, 4 and disagree on 3.
    decisions = {1: (["happiness"], "confirmed", ["happiness"], "confirmed"),
                 2: (["anger"], "confirmed", ["anger"], "confirmed"),
                 3: (["sadness"], "confirmed", ["fear"], "relabeled"),
                 4: (["neutral"], "confirmed", ["neutral"], "confirmed")}
    for sid, (la, sa, lb, sb) in decisions.items():
        ledger.record_decision(studied, sid, la, None, sa, "ann")
        ledger.record_decision(studied, sid, lb, None, sb, "bob")
    result = curation.curator_agreement(studied)
    pair = result.pairs.iloc[0]
    assert (pair["curator_a"], pair["curator_b"], pair["n_common"]) == ("ann", "bob", 4)
    assert pair["agreement"] == pytest.approx(0.75)
    # Cohen's kappa by hand: p_o = 3/4; ann {h, a, s, n}, bob {h, a, f, n}: p_e = 3 * (1/4 * 1/4) = 3/16.
    assert pair["kappa"] == pytest.approx((0.75 - 3 / 16) / (1 - 3 / 16))
    assert list(result.disagreements["source_id"]) == [3]
    assert result.disagreements.iloc[0]["opinions"] == {"ann": "sadness", "bob": "fear"}


@pytest.mark.parametrize("kwargs, message", [
    ({"labels": ["joyful"]}, "unknown emotion"),
    ({"labels": ["happiness", "neutral"], "weights": [0.5, 0.4], "status": "ambiguous"}, "sum to"),
    ({"labels": ["happiness", "neutral"], "weights": [1.0], "status": "ambiguous"}, "1 weights for 2 labels"),
    ({"source_id": 999}, "unknown source 999"),
    ({"status": "maybe"}, "unknown status"),
    ({"curator": " "}, "curator name"),
    ({"labels": ["anger"], "status": "confirmed"}, "use 'relabeled'"),
    ({"labels": ["happiness"], "status": "ambiguous"}, "two or more labels"),
    ({"labels": ["happiness"], "status": "excluded"}, "takes no labels"),
])
def test_bad_decisions_write_nothing(studied, kwargs, message):
    args = {"source_id": 1, "labels": ["happiness"], "weights": None, "status": "confirmed", "curator": "ann"}
    args.update(kwargs)
    before = studied.change_counter()
    with pytest.raises(ConfigError, match=message):
        ledger.record_decision(studied, **args)
    assert n_events(studied) == 0 and studied.change_counter() == before


def test_review_queue_filters_and_falls_back_without_audit(studied):
    ledger.record_decision(studied, 2, ["disgust"], None, "relabeled", "ann")
    queue = curation.review_queue(studied)
    # No votes, so no audit: dataset order by label (anger 2, happiness 1, neutral 4, sadness 3),
    # and the queue says so; 2 has its one curator (the default target), so it comes after the rest.
    assert list(queue["source_id"]) == [1, 4, 3, 2]
    assert curation.queue_order(queue).startswith("dataset order by label (no crowd votes")
    assert dict(zip(queue["source_id"], queue["status"], strict=True))[2] == "relabeled"
    assert list(curation.review_queue(studied, emotion="disgust")["source_id"]) == [2]
    assert list(curation.review_queue(studied, status="uncurated")["source_id"]) == [1, 4, 3]
    assert list(curation.review_queue(studied, curator="ann")["source_id"]) == [2]
    assert list(curation.review_queue(studied, unreviewed_by="ann")["source_id"]) == [1, 4, 3]
    with pytest.raises(ConfigError, match="unknown emotion"):
        curation.review_queue(studied, emotion="bliss")


def test_review_queue_follows_the_label_audit(store):
    # 1: all 10 versions voted "fear" against "happiness"; 2: 6 of 10 contradicted; 3: 4 of 10;
    # 4: all right. Listed in reverse so the order cannot come from source ids.
    add_sources(store, ["neutral", "anger", "anger", "happiness"],
                votes={3: ["fear"] * 10, 2: ["disgust"] * 6 + ["anger"] * 4,
                       1: ["fear"] * 4 + ["anger"] * 6, 0: ["neutral"] * 10})
    queue = curation.review_queue(store)
    assert list(queue["source_id"]) == [4, 3, 2, 1]
    row = queue.set_index("source_id")
    assert row.loc[4, "all_versions_wrong"] and not row.loc[3, "all_versions_wrong"]
    assert row.loc[3, "n_contradicted"] == 6 and row.loc[1, "n_contradicted"] == 0


def test_one_ranking_for_the_audit_the_queue_and_the_cli(store, capsys):
    # Four raters per version. Sources 1 and 2 are wrong in all 10 versions with the same majority
    # share (2 of 4 say fear) and the same P_i (1 agreeing pair of 6), but 1's label still gets one
    # vote in 4 and 2's gets none: 2 is the stronger contradiction. Source 3 is wrong in 5
    # versions, source 4 in none. By hand: 2, 1, 3, 4.
    add_sources(store, ["happiness", "anger", "sadness", "neutral"])
    plan = {1: lambda v: ["fear", "fear", "happiness", "surprise"],
            2: lambda v: ["fear", "fear", "surprise", "disgust"],
            3: lambda v: ["fear"] * 4 if v < 5 else ["sadness"] * 4, 4: lambda v: ["neutral"] * 4}
    rows = [(f"r{k}", f"{sid}-{d}-{lv}", emo) for sid, votes in plan.items()
            for v, (d, lv) in enumerate(VERSIONS) for k, emo in enumerate(votes(v))]
    with store.write() as con:
        con.executemany("INSERT INTO participants (participant_id) VALUES (?)", [[f"r{k}"] for k in range(4)])
        con.executemany("INSERT INTO votes (participant_id, stimulus_id, emotion) VALUES (?, ?, ?)", rows)
    from disfer.analysis import label_audit, load_study

    assert list(curation.review_queue(store)["source_id"]) == [2, 1, 3, 4]
    assert label_audit(load_study(store)).source_ids == [2, 1]
    assert main(["--db", str(store.path), "curate", "queue", "--json"]) == 0
    cli = [json.loads(line)["source_id"] for line in capsys.readouterr().out.splitlines()]
    assert cli == [2, 1, 3, 4]


def test_review_queue_reuses_the_study_it_is_given(studied, monkeypatch):
    from disfer.analysis import load_study
    from disfer.curation import queue as queue_module

    study = load_study(studied)
    monkeypatch.setattr(queue_module, "load_study", lambda *a, **k: pytest.fail("reloaded the study"))
    assert list(curation.review_queue(studied, study=study)["source_id"]) == [2, 1, 4, 3]


def test_soft_label_from_votes_sums_to_one():
    labels, weights = curation.soft_label_from_votes({"happiness": 7, "neutral": 2, "surprise": 1})
    assert labels == ["happiness", "neutral", "surprise"]
    assert weights == pytest.approx([0.7, 0.2, 0.1]) and abs(sum(weights) - 1) < 1e-9
    labels, weights = curation.soft_label_from_votes({"anger": 1, "fear": 1, "sadness": 1})
    ledger.parse_weights(weights, len(labels))  # accepted by the validator despite rounding


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_set_show_log_undo(studied, capsys):
    db = ["--db", str(studied.path)]
    assert main(db + ["curate", "set", "1", "--labels", "happiness,neutral", "--weights", "0.6,0.4",
                      "--status", "ambiguous", "--curator", "ann", "--note", "half smile"]) == 0
    assert main(db + ["curate", "set", "2", "--labels", "disgust", "--status", "relabeled",
                      "--curator", "bob"]) == 0
    capsys.readouterr()
    assert main(db + ["curate", "log", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["source_id"] for e in lines] == [1, 2]
    assert set(lines[0]) >= {"source_id", "labels", "weights", "status", "curator", "note", "at"}
    assert lines[0]["labels"] == ["happiness", "neutral"] and lines[0]["weights"] == [0.6, 0.4]
    assert lines[0]["note"] == "half smile" and lines[1]["weights"] is None
    assert main(db + ["curate", "show", "1"]) == 0
    out = capsys.readouterr().out
    assert "ambiguous" in out and "happiness" in out
    assert main(db + ["curate", "undo", str(lines[1]["event_id"]), "--curator", "bob"]) == 0
    assert gt_row(studied, 2) is None


@pytest.mark.parametrize("extra, message", [
    (["--labels", "happy,blissful", "--status", "ambiguous"], "unknown emotion 'blissful'"),
    (["--labels", "happiness,neutral", "--weights", "0.7,0.4", "--status", "ambiguous"], "sum to"),
    (["--labels", "happiness", "--status", "done"], "unknown status"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(studied, capsys, extra, message):
    code = main(["--db", str(studied.path), "curate", "set", "1", "--curator", "ann"] + extra)
    assert code == 2
    assert message in capsys.readouterr().err
    assert n_events(studied) == 0


def test_cli_unknown_source_exits_2(studied, capsys):
    code = main(["--db", str(studied.path), "curate", "set", "77", "--labels", "anger", "--status",
                 "relabeled", "--curator", "ann"])
    assert code == 2 and "unknown source 77" in capsys.readouterr().err
    assert n_events(studied) == 0


def test_cli_resolve_and_queue(studied, capsys):
    db = ["--db", str(studied.path)]
    main(db + ["curate", "set", "3", "--labels", "sadness", "--status", "confirmed", "--curator", "ann"])
    main(db + ["curate", "set", "3", "--labels", "fear", "--status", "relabeled", "--curator", "bob"])
    capsys.readouterr()
    assert main(db + ["curate", "queue", "--status", "disputed", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source_id"] for r in rows] == [3]
    assert main(db + ["curate", "resolve", "3", "--labels", "fear", "--status", "relabeled",
                      "--lead", "lea"]) == 0
    assert gt_row(studied, 3)["resolved"]
    assert gt_row(studied, 3)["labels"] == ["fear"]


# -- signed-in curators (hosted mode) -------------------------------------------------------------
def test_signed_in_writes_check_the_role_and_record_the_identity(studied):
    from disfer.access import AccessDenied, Actor

    viewer = Actor("vic@lab.org", "sub-vic", "viewer")
    curator = Actor("cat@lab.org", "sub-cat", "curator")
    other = Actor("oli@lab.org", "sub-oli", "curator")
    lead = Actor("lea@lab.org", "sub-lea", "lead")
    with pytest.raises(AccessDenied, match="vic@lab.org .viewer. may not curate"):
        ledger.record_decision(studied, 1, ["fear"], None, "relabeled", viewer)
    with pytest.raises(AccessDenied, match="may not resolve"):
        ledger.resolve(studied, 1, ["fear"], None, "relabeled", curator)
    assert n_events(studied) == 0
    event = ledger.record_decision(studied, 1, ["fear"], None, "relabeled", curator)
    with pytest.raises(AccessDenied, match="only its author or a lead"):
        ledger.undo(studied, event, other)
    ledger.undo(studied, event, lead)
    ledger.resolve(studied, 2, ["fear"], None, "relabeled", lead)
    log = ledger.event_log(studied)
    assert list(zip(log["curator"], log["subject"], strict=True)) == [
        ("cat@lab.org", "sub-cat"), ("lea@lab.org", "sub-lea"), ("lea@lab.org", "sub-lea")]
    ledger.record_decision(studied, 3, ["fear"], None, "relabeled", "ann")  # the CLI's plain name
    assert ledger.event_log(studied)["subject"].iloc[-1] == "local"


def test_the_activity_log_lists_every_signed_write_newest_first(studied):
    from disfer.access import Actor
    from disfer.ledger.trail import activity_log

    cat = Actor("cat@lab.org", "sub-cat", "curator")
    lea = Actor("lea@lab.org", "sub-lea", "lead")
    first = ledger.record_decision(studied, 1, ["fear"], None, "relabeled", cat)
    ledger.resolve(studied, 2, ["fear"], None, "relabeled", lea)
    ledger.undo(studied, first, cat)
    with studied.write() as con:
        con.execute("INSERT INTO runs (kind, status, actor, subject) VALUES ('export', 'done', ?, ?)",
                    ["adm@lab.org", "sub-adm"])
    log = activity_log(studied)
    curated = log[log["action"].isin(["curate", "resolve", "undo"])]
    assert list(curated["who"]) == ["cat@lab.org", "lea@lab.org", "cat@lab.org"]
    assert list(curated["action"]) == ["undo", "resolve", "curate"]
    assert curated["what"].iloc[0] == f"source 1 (event {first})"
    assert log[log["action"] == "export"][["who", "subject"]].values.tolist() == [["adm@lab.org", "sub-adm"]]
    assert list(log["at"]) == sorted(log["at"], reverse=True)


def test_the_queue_lists_only_study_faces(studied):
    # A source ingested but never built (no versions) is not a face to judge in the queue.
    with studied.write() as con:
        con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label, split, pixels) "
                    "VALUES (9, 'fer2013', 9, 'anger', 'Training', ?)", [bytes(48 * 48)])
    assert 9 not in set(curation.review_queue(studied)["source_id"])


def test_queue_progress_counts_mine_and_everyones(studied):
    ledger.record_decision(studied, 1, ["happiness"], None, "confirmed", "ann")
    ledger.record_decision(studied, 2, ["anger"], None, "confirmed", "ann")
    ledger.record_decision(studied, 2, ["fear"], None, "relabeled", "bob")
    undone = ledger.record_decision(studied, 3, ["sadness"], None, "confirmed", "bob")
    ledger.undo(studied, undone, "bob")
    queue = curation.review_queue(studied)
    ann, bob, nobody = (curation.queue_progress(queue, c) for c in ("ann", "bob", None))
    assert (ann.total, ann.decided, ann.remaining) == (4, 2, 2)  # 3 was undone: not decided
    assert (ann.mine, ann.remaining_mine) == (2, 2)
    assert (bob.mine, bob.remaining_mine) == (1, 3)
    assert nobody.mine == 0 and nobody.decided == 2
    # Decisions today count what took a curator's time: bob's undone one too, never the undo.
    assert ledger.decisions_today(studied, "bob") == 2
    assert ledger.decisions_today(studied, "ann") == 2 and ledger.decisions_today(studied) == 4
    assert ledger.decisions_today(studied, "cat") == 0


def test_event_summary_names_what_an_event_did(studied):
    event = ledger.record_decision(studied, 3, ["sadness", "fear"], [0.7, 0.3], "ambiguous", "ann", "hm")
    assert ledger.event_summary(studied, event) == {
        "event_id": event, "source_id": 3, "curator": "ann", "role": "curator", "status": "ambiguous",
        "labels": ["sadness", "fear"], "weights": [0.7, 0.3], "note": "hm", "undoes": None}
    assert ledger.event_summary(studied, 999) is None
