"""What a curator sees of one source: version names, the votes table, the per-version summary with
the consensus labels, and every model's answers; expected values worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_curation import VERSIONS, add_sources

from disfer.curation import source_evidence
from disfer.curation.evidence import version_name
from disfer.emotions import EMOTIONS

NAMES = ["original"] + [f"{d.replace('_', ' ')} {lv}" for d, lv in VERSIONS[1:]]


@pytest.fixture
def source(store):
    """Source 1 (happiness): its original has 3 anger, 3 fear, 2 surprise and 1 happiness votes, its
    gaussian_blur 1 one neutral vote; model m1 answers fear (70%) on the original, m2 anger (55%) on
    salt_pepper 3. Source 2 is there to be left out."""
    add_sources(store, ["happiness", "sadness"])
    votes = (["anger"] * 3 + ["fear"] * 3 + ["surprise"] * 2 + ["happiness"])
    rows = [(f"p{i}", "1-original-0", e) for i, e in enumerate(votes)] + [("p0", "1-gaussian_blur-1", "neutral"),
                                                                          ("p1", "2-original-0", "sadness")]
    proba = {"m1": ("1-original-0", "fear", 0.7), "m2": ("1-salt_pepper-3", "anger", 0.55)}
    with store.write() as con:
        con.executemany("INSERT INTO participants (participant_id) VALUES (?)", [[f"p{i}"] for i in range(9)])
        con.executemany("INSERT INTO votes (participant_id, stimulus_id, emotion) VALUES (?, ?, ?)", rows)
        for model, (stim, emotion, p) in proba.items():
            con.execute("INSERT INTO models (model_id, family) VALUES (?, 'external')", [model])
            values = [p if e == emotion else (1 - p) / 6 for e in EMOTIONS]
            con.execute("INSERT INTO predictions (model_id, stimulus_id, anger, disgust, fear, happiness, "
                        "neutral, sadness, surprise, predicted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [model, stim, *values, emotion])
    return store


def test_version_name():
    assert version_name("original", 0) == "original"
    assert version_name("gaussian_blur", 2) == "gaussian blur 2"
    assert version_name("salt_pepper", np.int64(3)) == "salt pepper 3"


def test_vote_table(source):
    evidence = source_evidence(source, 1)
    assert evidence.version_names == NAMES
    table = evidence.vote_table()
    assert table.columns.tolist() == ["version", "n_votes", *EMOTIONS]
    assert table["version"].tolist() == NAMES
    assert table.loc[0, ["anger", "fear", "surprise", "happiness", "n_votes"]].tolist() == [3, 3, 2, 1, 9]
    assert table.loc[1, "neutral"] == 1 and table["n_votes"].tolist() == [9, 1] + [0] * 8


def test_version_summary_with_and_without_consensus(source):
    evidence = source_evidence(source, 1)
    plain = evidence.version_summary()
    assert plain["version"].tolist() == NAMES
    assert plain["stimulus_id"].tolist() == [f"1-{d}-{lv}" for d, lv in VERSIONS]
    # anger and fear tie at 3: anger first, as in EMOTIONS; happiness (1) is the fourth, left out.
    assert plain["top_votes"].tolist() == ["anger 3, fear 3, surprise 2", "neutral 1"] + ["no votes"] * 8
    assert plain["pixels"].tolist() == evidence.versions["pixels"].tolist()
    assert all(v is None for v in plain["majority"]) and all(v is None for v in plain["dawid_skene"])
    consensus = pd.DataFrame({"stimulus_id": ["1-original-0", "2-original-0"], "source_id": [1, 2],
                              "majority": ["anger", "sadness"], "dawid_skene": ["fear", "sadness"]})
    summary = evidence.version_summary(consensus)
    assert summary.loc[0, ["majority", "dawid_skene"]].tolist() == ["anger", "fear"]
    assert all(v is None for v in summary["dawid_skene"].iloc[1:])


def test_prediction_table(source):
    table = source_evidence(source, 1).prediction_table()
    assert table.index.tolist() == NAMES and table.columns.tolist() == ["m1", "m2"]
    assert table.loc["original", "m1"] == "fear (70%)"
    assert table.loc["salt pepper 3", "m2"] == "anger (55%)"
    assert table.notna().sum().sum() == 2


def test_majorities_and_the_audit_reason_in_words(source, store):
    evidence = source_evidence(source, 1)
    # The original: anger and fear tie at 3; gaussian blur 1: one neutral vote; the rest unvoted.
    assert evidence.version_majorities() == ["tie", "neutral"] + [None] * 8
    assert evidence.audit_reason("happiness") == \
        "majority neutral in 1, a tie in 1 of 2 voted versions (of 10); label happiness"
    assert source_evidence(source, 2).audit_reason("sadness") == \
        "majority sadness in 1 of 1 voted versions (of 10); label sadness"
    # Every version voted "fear": the example of the issue, worded as it asks.
    with store.write() as con:
        con.executemany("INSERT INTO votes (participant_id, stimulus_id, emotion) VALUES ('p8', ?, 'fear')",
                        [[f"2-{d}-{lv}"] for d, lv in VERSIONS])
        con.execute("DELETE FROM votes WHERE stimulus_id = '2-original-0' AND emotion = 'sadness'")
    assert source_evidence(store, 2).audit_reason("sadness") == "majority fear in 10 of 10 versions; label sadness"
    assert evidence.n_votes == 10


def test_without_votes_the_reason_says_so_and_the_face_is_still_there(store):
    add_sources(store, ["anger"])
    evidence = source_evidence(store, 1)
    assert evidence.audit_reason("anger") == "no crowd votes on this face yet; label anger"
    assert evidence.n_votes == 0 and evidence.face == evidence.versions["pixels"].iloc[0]
    # A source outside the study: no versions, its own stored face.
    with store.write() as con:
        con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label, split, pixels) "
                    "VALUES (7, 'fer2013', 7, NULL, 'Training', ?)", [bytes(range(256)) * 9])
    outside = source_evidence(store, 7)
    assert outside.versions.empty and outside.face == bytes(range(256)) * 9
    assert outside.audit_reason(None) == "no crowd votes on this face yet; no label"


def test_model_answers(source):
    answers = source_evidence(source, 1).model_answers()
    assert answers["model_id"].tolist() == ["m1", "m2"]
    assert answers["original"].tolist() == ["fear", None] and answers["top"].tolist() == ["fear", "anger"]
    assert answers["top_count"].tolist() == [1, 1] and answers["n_versions"].tolist() == [1, 1]
    assert answers.loc[0, "confidence"] == pytest.approx(0.7)
