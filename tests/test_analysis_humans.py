import numpy as np
from analysis_fixtures import insert_study, random_study

from disfer.analysis import load_study, majority_vote, participant_accuracy
from disfer.analysis.humans import majority_from_counts
from disfer.emotions import EMOTIONS


def test_tie_rule_is_first_in_canonical_order():
    counts = np.array([[0, 0, 2, 0, 0, 2, 1],   # fear and sadness tie -> fear
                       [0, 0, 0, 0, 0, 0, 3],   # surprise
                       [0, 0, 0, 0, 0, 0, 0],   # no votes
                       [1, 1, 1, 1, 1, 1, 1]])  # seven-way tie -> anger
    maj, tied = majority_from_counts(counts)
    assert maj.tolist() == [2, 6, -1, 0]
    assert tied.tolist() == [True, False, False, True]


def test_majority_vote_hand_example(store):
    votes = [("a", "1-original-0", "anger"), ("b", "1-original-0", "anger"), ("c", "1-original-0", "fear"),
             ("a", "2-original-0", "sadness"), ("b", "2-original-0", "happiness"),
             ("c", "2-original-0", "happiness"), ("d", "2-original-0", "sadness")]
    insert_study(store, {1: "anger", 2: "sadness"}, votes)
    mv = majority_vote(store).set_index("stimulus_id")
    assert mv.loc["1-original-0", "majority"] == "anger"
    assert mv.loc["1-original-0", "majority_share"] == 2 / 3
    assert bool(mv.loc["1-original-0", "correct"]) and not mv.loc["1-original-0", "tied"]
    # 2 happiness vs 2 sadness: tie, happiness comes first in canonical order, so the label loses
    assert mv.loc["2-original-0", "majority"] == "happiness"
    assert mv.loc["2-original-0", "tied"]
    assert mv.loc["2-original-0", "label_share"] == 0.5
    assert not mv.loc["2-original-0", "correct"]


def test_majority_agrees_with_an_independent_count(store):
    drawn = random_study(store, n_sources=10, raters_per_playlist=7, seed=3)
    votes = drawn["votes"]
    counts = votes.groupby(["stimulus_id", "emotion"]).size().unstack(fill_value=0)
    top = counts.max(axis=1)
    untied = counts[(counts.eq(top, axis=0)).sum(axis=1) == 1]
    expected = untied.idxmax(axis=1)
    mv = majority_vote(load_study(store)).set_index("stimulus_id")
    assert (mv.loc[expected.index, "majority"] == expected).all()
    assert mv["tied"].sum() == len(counts) - len(untied)


def test_participant_accuracy(store):
    votes = [("a", "1-original-0", "anger"), ("a", "2-original-0", "fear"),
             ("b", "1-original-0", "anger"), ("b", "2-original-0", "sadness"),
             ("c", "3-original-0", "fear")]  # source 3 has no label: c is left out
    insert_study(store, {1: "anger", 2: "sadness", 3: None}, votes)
    pa = participant_accuracy(store)
    assert dict(zip(pa.table["participant_id"], pa.table["accuracy"], strict=True)) == {"a": 0.5, "b": 1.0}
    assert (pa.mean, pa.min, pa.max) == (0.75, 0.5, 1.0)


def test_participant_accuracy_matches_pandas(store):
    drawn = random_study(store, n_sources=6, raters_per_playlist=4, seed=4)
    v = drawn["votes"].merge(drawn["stimuli"], on="stimulus_id")
    v["label"] = [EMOTIONS[drawn["labels"][s - 1]] for s in v["source_id"]]
    expected = (v["emotion"] == v["label"]).groupby(v["participant_id"]).mean()
    pa = participant_accuracy(store).table.set_index("participant_id")["accuracy"]
    assert np.allclose(pa.sort_index(), expected.sort_index())
