import numpy as np
import pytest
from analysis_fixtures import insert_study, random_study

from disfer.analysis import load_study, load_trials
from disfer.analysis.trials import study_from_trials
from disfer.errors import ConfigError

VOTES = [("p1", "1-original-0", "anger"), ("p2", "1-original-0", "fear"),
         ("p1", "1-gaussian_blur-1", "anger"), ("p1", "2-original-0", "happiness")]


def test_trial_table_has_one_row_per_vote_and_prediction(store):
    insert_study(store, {1: "anger", 2: None}, VOTES,
                 predictions={"net": {"1-original-0": "anger", "2-original-0": "sadness"}})
    trials = load_trials(store)
    assert list(trials.columns[:2]) == ["rater", "rater_kind"]
    assert {"stimulus_id", "source_id", "distortion", "level", "label", "predicted", "correct"} <= set(trials)
    assert (trials["rater_kind"] == "human").sum() == 4
    assert (trials["rater_kind"] == "model").sum() == 2
    row = trials[(trials["rater"] == "p2")].iloc[0]
    assert (row["stimulus_id"], row["label"], row["predicted"], bool(row["correct"])) == \
        ("1-original-0", "anger", "fear", False)
    # Source 2 has no label: its trials are neither right nor wrong.
    assert trials.loc[trials["source_id"] == 2, "correct"].isna().all()


def test_study_orders_stimuli_canonically_and_counts_votes(store):
    random_study(store, n_sources=3, raters_per_playlist=2, playlist_size=10, seed=1)
    study = load_study(store)
    st = study.stimuli
    assert list(st["stimulus_id"][:4]) == ["1-original-0", "1-gaussian_blur-1", "1-gaussian_blur-2",
                                          "1-gaussian_blur-3"]
    assert study.counts.sum() == len(study.vote_stim) == 3 * 10 * 2
    # counts agree with a plain SQL group-by
    with store.read() as con:
        n = con.execute("SELECT count(*) FROM votes WHERE stimulus_id = '2-salt_pepper-3' AND emotion = 'fear'"
                        ).fetchone()[0]
    i = st.index[st["stimulus_id"] == "2-salt_pepper-3"][0]
    assert study.counts[i, 2] == n


def test_study_round_trips_through_the_trial_table(store):
    random_study(store, n_sources=4, raters_per_playlist=3, playlist_size=10, seed=2)
    study = load_study(store)
    again = study_from_trials(study.trials())
    assert np.array_equal(again.counts, study.counts)
    assert again.models == study.models
    assert np.array_equal(again.model_pred, study.model_pred)


def test_unknown_label_kind(store):
    with pytest.raises(ConfigError, match="label kind"):
        load_study(store, label_kind="gold")


def _curated_store(store):
    insert_study(store, {1: "anger", 2: "fear", 3: "sadness"},
                 [("p1", "1-original-0", "disgust"), ("p1", "2-original-0", "fear"),
                  ("p1", "3-original-0", "sadness")],
                 predictions={"net": {"1-original-0": "disgust", "2-original-0": "surprise",
                                      "3-original-0": "sadness"}})
    with store.write() as con:
        # source 1 becomes anger+disgust (disgust weighs more), source 2 is excluded,
        # source 3 is relabeled and then the relabel is undone (back to its original label).
        con.execute("INSERT INTO curation_events (source_id, curator, labels, weights, status)"
                    " VALUES (1, 'ann', ['anger', 'disgust'], [0.4, 0.6], 'ambiguous')")
        con.execute("INSERT INTO curation_events (source_id, curator, labels, status)"
                    " VALUES (2, 'ann', [], 'excluded')")
        con.execute("INSERT INTO curation_events (event_id, source_id, curator, labels, status)"
                    " VALUES (100, 3, 'ann', ['happiness'], 'relabeled')")
        con.execute("INSERT INTO curation_events (source_id, curator, labels, status, undoes)"
                    " VALUES (3, 'ann', [], 'undo', 100)")


def test_curated_labels_from_curation_events(store):
    _curated_store(store)
    study = load_study(store, label_kind="curated")
    assert list(study.stimuli["source_id"]) == [1, 3]          # excluded source dropped
    assert list(study.stimuli["label"]) == ["disgust", "sadness"]  # primary = largest weight
    trials = load_trials(store, label_kind="curated")
    assert trials["correct"].astype(bool).all()  # disgust counts for source 1, sadness for 3
    original = load_trials(store)
    assert not original.loc[original["source_id"] == 1, "correct"].astype(bool).any()
