"""Playlists for the crowd study: every stimulus once, no face twice, emotions and conditions balanced."""

from __future__ import annotations

import pandas as pd
import pytest

from disfer.data.playlists import assign_playlists, make_playlists
from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError


def _design(store) -> pd.DataFrame:
    with store.read() as con:
        return con.execute(
            "SELECT p.playlist_id, p.position, t.stimulus_id, t.source_id, t.distortion, t.level,"
            " s.original_label AS label FROM stimuli t JOIN sources s USING (source_id)"
            " LEFT JOIN playlists p USING (stimulus_id)").df()


def _check_constraints(df: pd.DataFrame, count: int) -> None:
    """What a study designer checks: coverage, one version per face, balance within one."""
    assert df["playlist_id"].notna().all(), "a stimulus is in no playlist"
    assert df["stimulus_id"].is_unique
    assert sorted(df["playlist_id"].unique()) == list(range(1, count + 1))
    per_playlist = df.groupby("playlist_id")
    assert (per_playlist["source_id"].nunique() == per_playlist.size()).all(), "a face repeats in a playlist"
    assert per_playlist.size().max() - per_playlist.size().min() <= 1
    for p, g in per_playlist:
        assert sorted(g["position"]) == list(range(1, len(g) + 1)), f"playlist {p} positions"
    emo = df.pivot_table(index="playlist_id", columns="label", values="stimulus_id", aggfunc="count", fill_value=0)
    cond = df.pivot_table(index="playlist_id", columns=["distortion", "level"], values="stimulus_id",
                          aggfunc="count", fill_value=0)
    assert (emo.max() - emo.min()).max() <= 1, emo
    assert (cond.max() - cond.min()).max() <= 1, cond


def test_real_study_21_playlists_of_40_satisfy_every_constraint(real_study):
    make_playlists(real_study, count=21, size=40, seed=5)
    df = _design(real_study)
    _check_constraints(df, 21)
    assert (df.groupby("playlist_id").size() == 40).all()
    assert (df.groupby("playlist_id")["source_id"].nunique() == 40).all()
    emo = df.groupby(["playlist_id", "label"]).size().unstack()
    assert set(emo.columns) == set(EMOTIONS) and emo.min().min() == 5 and emo.max().max() == 6
    cond = df.groupby(["playlist_id", "distortion", "level"]).size()
    assert (cond == 4).all()


def test_playlists_are_deterministic_per_seed(real_study):
    a = make_playlists(real_study, count=21, size=40, seed=1)
    b = make_playlists(real_study, count=21, size=40, seed=1)
    c = make_playlists(real_study, count=21, size=40, seed=2)
    assert a.equals(b) and not a.equals(c)
    with real_study.read() as con:
        stored = con.execute("SELECT playlist_id, stimulus_id, position FROM playlists"
                             " ORDER BY playlist_id, position").df()
    assert stored.astype({"playlist_id": "int64", "position": "int64"}).equals(
        c.astype({"playlist_id": "int64", "position": "int64"}))


@pytest.mark.parametrize("per_emotion,count", [(5, 10), (4, 13), (3, 11), (7, 16)])
def test_uneven_designs_still_balance_within_one(per_emotion, count):
    rows = [(f"{s}-{d}-{lv}", s, d, lv, EMOTIONS[s % 7])
            for s in range(per_emotion * 7)
            for d, lv in [("original", 0)] + [(d, lv) for d in ("gaussian_blur", "gaussian_noise", "salt_pepper")
                                               for lv in (1, 2, 3)]]
    stimuli = pd.DataFrame(rows, columns=["stimulus_id", "source_id", "distortion", "level", "label"])
    out = assign_playlists(stimuli, count, seed=0).merge(stimuli, on="stimulus_id")
    _check_constraints(out, count)


def test_unequal_emotion_sizes_stay_proportional():
    # Like the whole test split: some emotions much rarer than others.
    sizes = {"anger": 9, "disgust": 2, "fear": 10, "happiness": 17, "neutral": 12, "sadness": 12, "surprise": 8}
    rows, sid = [], 0
    for emotion, n in sizes.items():
        for _ in range(n):
            rows += [(f"{sid}-original-0", sid, "original", 0, emotion)]
            rows += [(f"{sid}-gaussian_blur-{lv}", sid, "gaussian_blur", lv, emotion) for lv in (1, 2, 3)]
            sid += 1
    stimuli = pd.DataFrame(rows, columns=["stimulus_id", "source_id", "distortion", "level", "label"])
    out = assign_playlists(stimuli, 10, seed=3).merge(stimuli, on="stimulus_id")
    assert not out.duplicated(["playlist_id", "source_id"]).any()
    emo = out.groupby(["playlist_id", "label"]).size().unstack(fill_value=0)
    assert ((emo.max() - emo.min()) <= 2).all()


def test_sizes_that_do_not_fill_the_stimuli_or_too_few_playlists_are_refused(built_study):
    with pytest.raises(ConfigError, match="do not fill"):
        make_playlists(built_study, count=10, size=40)
    with pytest.raises(ConfigError, match="at least 10 playlists"):
        make_playlists(built_study, count=7)


def test_no_stimuli_is_a_config_error(store):
    with pytest.raises(ConfigError, match="disfer build"):
        make_playlists(store)
