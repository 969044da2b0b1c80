import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import insert_study, random_study, write_frames
from conftest import FERPLUS, require_file
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from disfer.analysis import overview
from disfer.analysis.overview import crowd_summary


def test_overview_counts(store):
    random_study(store, n_sources=5, raters_per_playlist=2, playlist_size=10, seed=12)
    insert_study(store, {99: None}, stimuli=["99-original-0"])
    info = overview(store, availability=False)
    assert info["sources"] == 6 and info["stimuli"] == 51
    assert sum(info["sources_per_emotion"].values()) == 6 and info["sources_per_emotion"]["unknown"] == 1
    assert info["playlists"] == 5 and info["participants"] == 10 and info["votes"] == 100
    assert info["study_kind"] == "demo"
    assert {m["model_id"]: m["predictions"] for m in info["models"]} == {"model_a": 50, "model_b": 50}


def test_overview_of_an_empty_store(store):
    info = overview(store)
    assert info["sources"] == 0 and info["study_kind"] is None
    assert all(isinstance(m["model_id"], str) for m in info["models"])


def test_real_ferplus_crowd_agreement(store):
    path = require_file(FERPLUS)
    raw = pd.read_csv(path)
    cats = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
            "unknown", "NF"]
    counts = raw[cats].to_numpy(np.int64)
    n = len(raw)
    write_frames(store, pd.DataFrame({"source_id": np.arange(n), "label": None}),
                 pd.DataFrame(columns=["stimulus_id", "source_id", "distortion", "level"]))
    src, cat = np.nonzero(counts)
    long = pd.DataFrame({"source_id": src, "category": np.array(cats)[cat], "n": counts[src, cat]})
    with store.write() as con:
        con.register("long", long)
        con.execute("INSERT INTO crowd_counts SELECT 'ferplus', source_id, category, n FROM long")
    s = crowd_summary(store)
    assert s["sources"] == n and s["votes"] == counts.sum()
    full = counts[counts.sum(axis=1) == 10]  # all but one image have exactly 10 votes
    assert s["fleiss_kappa"] == pytest.approx(sm_fleiss_kappa(full), abs=1e-4)
    assert s["majority_vs_label"]["n"] == 0  # no FER-2013 labels joined here
