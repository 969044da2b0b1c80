"""The stimulus gallery: majority, playlist and audit status per stimulus, its filters, and one
source's versions; checked on a hand-made study and against pandas on a random one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import insert_study, random_study

from disfer.analysis import load_study
from disfer.analysis.gallery import (
    AUDIT_STATUSES,
    filter_gallery,
    gallery_choices,
    label_and_majority,
    source_conditions,
    source_versions,
    stimulus_gallery,
    study_sources,
)
from disfer.emotions import EMOTIONS


@pytest.fixture
def small(store):
    """Source 1 (anger): its original agrees 2:1, its blur says fear 2:1. Source 2 (happiness): its
    original ties anger and happiness (anger wins, by EMOTIONS order), its salt & pepper has no vote."""
    votes = [("p1", "1-original-0", "anger"), ("p2", "1-original-0", "anger"), ("p3", "1-original-0", "fear"),
             ("p1", "1-gaussian_blur-1", "fear"), ("p2", "1-gaussian_blur-1", "fear"),
             ("p3", "1-gaussian_blur-1", "anger"),
             ("p1", "2-original-0", "happiness"), ("p2", "2-original-0", "anger")]
    insert_study(store, {1: "anger", 2: "happiness"}, votes,
                 predictions={"m": {"1-original-0": "anger", "2-original-0": "sadness"}},
                 stimuli=["2-salt_pepper-3"])
    with store.write() as con:
        con.execute("INSERT INTO playlists VALUES (0, '1-original-0', 0), (1, '2-original-0', 0)")
    return store


def test_gallery_of_a_hand_made_study(small):
    table = stimulus_gallery(small).set_index("stimulus_id")
    assert list(table.index) == ["1-original-0", "1-gaussian_blur-1", "2-original-0", "2-salt_pepper-3"]
    assert table["majority"].tolist()[:3] == ["anger", "fear", "anger"]
    assert pd.isna(table.loc["2-salt_pepper-3", "majority"])
    assert table["audit"].tolist() == ["agrees with label", "contradicts label", "contradicts label", "no votes"]
    assert table.loc["1-original-0", "playlist_id"] == 0 and table.loc["2-original-0", "playlist_id"] == 1
    assert table["playlist_id"].isna().tolist() == [False, True, False, True]
    assert table.loc["1-gaussian_blur-1", "majority_share"] == pytest.approx(2 / 3)
    # The Study a caller holds gives the same table as one loaded here.
    pd.testing.assert_frame_equal(stimulus_gallery(small, study=load_study(small)).set_index("stimulus_id"),
                                  table)


def test_gallery_matches_pandas_on_a_random_study(store):
    drawn = random_study(store, n_sources=8, raters_per_playlist=3, playlist_size=10, seed=4)
    table = stimulus_gallery(store).set_index("stimulus_id").sort_index()
    votes = drawn["votes"]
    counts = pd.crosstab(votes["stimulus_id"], votes["emotion"]).reindex(columns=list(EMOTIONS), fill_value=0)
    majority = counts.idxmax(axis=1)  # the first maximum in EMOTIONS order: the tie rule
    label = drawn["stimuli"].set_index("stimulus_id")["source_id"].map(
        lambda s: EMOTIONS[drawn["labels"][s - 1]])
    expected_audit = (majority == label.reindex(majority.index)).map(
        {True: "agrees with label", False: "contradicts label"})
    assert table["majority"].reindex(majority.index).tolist() == majority.tolist()
    assert table["audit"].reindex(expected_audit.index).tolist() == expected_audit.tolist()
    with store.read() as con:
        placed = dict(con.execute("SELECT stimulus_id, playlist_id FROM playlists").fetchall())
    assert table["playlist_id"].astype(int).to_dict() == placed


def test_gallery_choices_offer_what_is_present_in_canonical_order(small):
    choices = gallery_choices(stimulus_gallery(small))
    assert choices == {"label": ["anger", "happiness"], "distortion": ["original", "gaussian_blur", "salt_pepper"],
                       "level": [0, 1, 3], "playlist": [0, 1]}


def test_filter_gallery_applies_every_filter():
    table = pd.DataFrame({
        "stimulus_id": list("abcde"), "label": ["anger", "fear", "fear", "anger", "sadness"],
        "distortion": ["original", "salt_pepper", "original", "gaussian_blur", "salt_pepper"],
        "level": [0, 2, 0, 1, 3], "playlist_id": [0.0, 1.0, np.nan, 1.0, 0.0],
        "majority_share": [0.9, 0.4, np.nan, 0.6, 0.2],
        "audit": ["agrees with label", "contradicts label", "no votes", "agrees with label",
                  "contradicts label"]})

    def ids(**filters) -> str:
        return "".join(filter_gallery(table, **filters)["stimulus_id"])

    assert ids() == "abcde"
    assert ids(labels=["fear"]) == "bc"
    assert ids(distortions=["salt_pepper"], levels=[3]) == "e"
    assert ids(playlists=[1]) == "bd"
    assert ids(share=(0.5, 1.0)) == "acd"  # c has no votes: it always passes
    assert ids(share=(0.4, 0.6)) == "bcd"  # bounds inclusive
    assert ids(audit=[AUDIT_STATUSES[1]]) == "be"
    assert ids(labels=["anger", "sadness"], audit=["agrees with label"], playlists=[0, 1]) == "ad"


def test_source_versions(small):
    study = load_study(small)
    one = source_versions(study, 1)
    assert one.columns.tolist() == ["stimulus_id", "distortion", "level", "label", "votes", "m"]
    assert one["stimulus_id"].tolist() == ["1-original-0", "1-gaussian_blur-1"]
    assert one["votes"].tolist() == ["anger 2, fear 1", "anger 1, fear 2"]
    assert one["m"].iloc[0] == "anger" and pd.isna(one["m"].iloc[1])
    two = source_versions(study, 2)
    assert two["votes"].tolist() == ["anger 1, happiness 1", ""]
    assert two["m"].iloc[0] == "sadness" and pd.isna(two["m"].iloc[1])
    assert set(two["label"]) == {"happiness"}
    assert source_versions(study, 99).empty


def test_the_studys_sources_their_versions_and_the_crowds_verdict(small):
    table = stimulus_gallery(small)
    assert study_sources(table).to_dict("list") == {"source_id": [1, 2], "label": ["anger", "happiness"]}
    assert source_conditions(table, 1) == {"original": [0], "gaussian_blur": [1]}
    assert source_conditions(table, 2) == {"original": [0], "salt_pepper": [3]}
    assert source_conditions(table, 99) == {}
    assert label_and_majority(table, "1-original-0") == \
        "Dataset label: anger. Crowd majority: anger (2 of 3 votes)."
    assert label_and_majority(table, "1-gaussian_blur-1") == \
        "Dataset label: anger. Crowd majority: fear (2 of 3 votes)."
    assert label_and_majority(table, "2-original-0") == \
        "Dataset label: happiness. Crowd majority: none, a tie (1 of 2 votes each)."
    assert label_and_majority(table, "2-salt_pepper-3") == \
        "Dataset label: happiness. Crowd majority: no votes yet."
    with pytest.raises(KeyError, match="9-original-0"):
        label_and_majority(table, "9-original-0")
