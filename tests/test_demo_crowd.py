"""The simulated crowd: its generative model behaves like the people of the paper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disfer.demo.crowd import CrowdModel, answer_distribution, mislabel, simulate_votes
from disfer.demo.faces import generate_faces
from disfer.emotions import EMOTION_INDEX, EMOTIONS
from disfer.errors import ConfigError

VERSIONS = [("original", 0)] + [(d, lv) for d in ("gaussian_blur", "gaussian_noise", "salt_pepper")
                                 for lv in (1, 2, 3)]


def _onehot(emotion: str) -> np.ndarray:
    m = np.zeros(len(EMOTIONS))
    m[EMOTION_INDEX[emotion]] = 1
    return m


def _study(per_emotion: int, seed: int):
    """A study shaped like the demo's: sources x 10 versions, shuffled into playlists of 40."""
    rng = np.random.default_rng(seed)
    faces = generate_faces(per_emotion, seed)
    labels = mislabel(faces.emotion, 0.2, rng)
    stimuli = pd.DataFrame([(f"{i}-{d}-{lv}", i, d, lv) for i in range(len(labels)) for d, lv in VERSIONS],
                           columns=["stimulus_id", "source_id", "distortion", "level"])
    order = rng.permutation(len(stimuli))
    playlists = pd.DataFrame({"stimulus_id": stimuli["stimulus_id"].to_numpy()[order],
                              "playlist_id": np.arange(len(stimuli)) // 40,
                              "position": np.arange(len(stimuli)) % 40})
    mixtures = {i: faces.mixture[i] for i in range(len(labels))}
    return faces, labels, stimuli, playlists, mixtures


def test_answer_distribution_is_a_distribution_led_by_the_clear_emotion():
    for emotion in EMOTIONS:
        p = answer_distribution(_onehot(emotion), "original", 0, 5.0)
        assert p.sum() == pytest.approx(1.0)
        assert EMOTIONS[int(p.argmax())] == emotion


def test_salt_and_pepper_barely_matters_strong_gaussian_noise_most():
    face = 0.8 * _onehot("fear") + 0.2 * _onehot("neutral")
    clear = answer_distribution(face, "original", 0, 5.0)
    loss = {d: clear[EMOTION_INDEX["fear"]] - answer_distribution(face, d, 3, 5.0)[EMOTION_INDEX["fear"]]
            for d in ("salt_pepper", "gaussian_blur", "gaussian_noise")}
    assert loss["salt_pepper"] < 0.05
    assert loss["salt_pepper"] < loss["gaussian_blur"] < loss["gaussian_noise"]
    levels = [answer_distribution(face, "gaussian_noise", lv, 5.0)[EMOTION_INDEX["fear"]] for lv in (1, 2, 3)]
    assert levels[0] > levels[1] > levels[2]


def test_an_ambiguous_face_splits_the_votes_between_its_two_emotions():
    p = answer_distribution(0.5 * _onehot("fear") + 0.5 * _onehot("surprise"), "original", 0, 5.0)
    assert p[EMOTION_INDEX["fear"]] > 0.25 and p[EMOTION_INDEX["surprise"]] > 0.25


def test_unknown_distortion_is_a_config_error():
    with pytest.raises(ConfigError, match="jpeg"):
        answer_distribution(_onehot("fear"), "jpeg", 1, 5.0)


def test_mislabel_keeps_class_sizes_and_mislabels_one_in_five():
    shown = [e for e in EMOTIONS for _ in range(12)]
    labels = mislabel(shown, 0.2, np.random.default_rng(0))
    assert sorted(labels) == sorted(shown)
    assert sum(a != b for a, b in zip(labels, shown, strict=True)) == round(0.2 * len(shown))


def test_every_rater_sees_one_playlist_and_every_stimulus_gets_its_votes():
    _, _, stimuli, playlists, mixtures = _study(2, seed=1)
    model = CrowdModel(raters_per_playlist=7)
    votes, people = simulate_votes(stimuli, mixtures, playlists, seed=1, model=model)
    assert len(people) == playlists["playlist_id"].nunique() * 7
    assert (votes.groupby("stimulus_id").size() == 7).all()
    assert set(votes["stimulus_id"]) == set(stimuli["stimulus_id"])
    seen = votes.merge(playlists, on="stimulus_id").groupby("participant_id")["playlist_id"].nunique()
    assert (seen == 1).all()
    assert set(votes["emotion"]) <= set(EMOTIONS) and (votes["rt_ms"] > 0).all()
    again, _ = simulate_votes(stimuli, mixtures, playlists, seed=1, model=model)
    pd.testing.assert_frame_equal(again, votes)


def _fleiss_kappa(counts: np.ndarray) -> float:
    n = counts.sum(axis=1)
    agreement = ((counts * (counts - 1)).sum(axis=1) / (n * (n - 1))).mean()
    chance = ((counts.sum(axis=0) / counts.sum()) ** 2).sum()
    return (agreement - chance) / (1 - chance)


def test_the_crowd_lands_in_the_papers_ranges_and_reliable_raters_agree_more():
    faces, labels, stimuli, playlists, mixtures = _study(12, seed=0)
    votes, people = simulate_votes(stimuli, mixtures, playlists, seed=0)
    counts = pd.crosstab(votes["stimulus_id"], votes["emotion"]).reindex(columns=list(EMOTIONS), fill_value=0)
    majority = counts.idxmax(axis=1)
    label_of = stimuli.set_index("stimulus_id")["source_id"].map(dict(enumerate(labels)))
    accuracy = (majority == label_of.reindex(majority.index)).mean()
    assert 0.5 <= accuracy <= 0.72
    assert 0.45 <= _fleiss_kappa(counts.to_numpy()) <= 0.65
    # Raters who attend more often agree more with the crowd's majority.
    votes["with_majority"] = votes["emotion"].to_numpy() == majority.reindex(votes["stimulus_id"]).to_numpy()
    agreement = votes.groupby("participant_id")["with_majority"].mean()
    reliability = people.set_index("participant_id")["reliability"].reindex(agreement.index)
    assert np.corrcoef(agreement, reliability)[0, 1] > 0.3
    # Wrong labels are found: sources whose majority contradicts the label in all 10 versions.
    contradicts = (majority != label_of.reindex(majority.index)).groupby(
        stimuli.set_index("stimulus_id")["source_id"].reindex(majority.index)).all()
    wrong = {i for i, (a, b) in enumerate(zip(labels, faces.emotion, strict=True)) if a != b}
    assert len(set(contradicts[contradicts].index) & wrong) >= len(wrong) // 2
