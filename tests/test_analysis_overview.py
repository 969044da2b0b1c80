import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import insert_study, random_study, write_frames
from conftest import FERPLUS, require_file
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from disfer.analysis import overview
from disfer.analysis.overview import (
    crowd_summary,
    curated_source_count,
    emotion_counts,
    fine_tunable_models,
    headline_table,
    model_status,
    model_weights,
    ready_models,
)
from disfer.emotions import EMOTIONS


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


def _info(name, family, present, parent=None):
    from disfer.models.registry import ModelInfo

    return ModelInfo(name=name, family=family, description="", weights_present=present,
                     weights_path=f"/w/{name}.pt" if present else None, weights_file=f"{name}.pt",
                     looked_in=(f"{name}.pt",), hint=f"put {name}.pt in models/", parent_id=parent)


REGISTRY = [_info("minixception", "minixception", True), _info("rmn", "rmn", False),
            _info("minixception-ft-blur", "minixception", True, parent="minixception"),
            _info("odd", "unknown_family", True)]


def test_model_weights_ready_and_fine_tunable_models(store):
    from unittest.mock import patch

    with patch("disfer.models.registry.list_models", return_value=REGISTRY):
        table = model_weights(store)
        ready = ready_models(store)
        tunable = fine_tunable_models(store)
    assert table.columns.tolist() == ["model", "family", "available", "weights", "note"]
    assert table["model"].tolist() == [m.name for m in REGISTRY]
    assert table["available"].tolist() == [True, False, True, True]
    assert pd.isna(table.loc[1, "weights"]) and table.loc[1, "note"] == "put rmn.pt in models/"
    assert table.loc[0, "weights"] == "/w/minixception.pt" and table.loc[0, "note"] == "ready"
    assert ready == ["minixception", "minixception-ft-blur", "odd"]
    assert tunable == ["minixception", "minixception-ft-blur"]  # no adapter for unknown_family


def test_overview_reads_availability_from_the_registry(store):
    from unittest.mock import patch

    insert_study(store, {1: "anger"}, predictions={"minixception": {"1-original-0": "anger"},
                                                   "imported": {"1-original-0": "fear"}})
    with patch("disfer.models.registry.list_models", return_value=REGISTRY[:2]):
        info = overview(store)
    models = {m["model_id"]: m for m in info["models"]}
    assert models["minixception"]["available"] is True and models["minixception"]["predictions"] == 1
    assert models["rmn"]["available"] is False and models["rmn"]["predictions"] == 0
    assert models["imported"]["available"] is None  # the registry does not know it
    assert info["predictions"] == 2
    assert all(m["available"] is None for m in overview(store, availability=False)["models"])


def test_a_failing_registry_fails_the_overview(store):
    from unittest.mock import patch

    with patch("disfer.models.registry.list_models", side_effect=RuntimeError("broken registry")), \
            pytest.raises(RuntimeError, match="broken registry"):
        overview(store)


def test_curated_source_count(store):
    from disfer.ledger import record_decision

    insert_study(store, {1: "anger", 2: "fear", 3: "sadness"}, stimuli=["1-original-0", "2-original-0"])
    assert curated_source_count(store) == 0
    record_decision(store, 1, ["anger"], None, "confirmed", "ann")
    record_decision(store, 2, [], None, "excluded", "ann")
    record_decision(store, 1, ["surprise"], None, "relabeled", "bob")  # a dispute is still one source
    assert curated_source_count(store) == 2


def test_front_page_tables():
    facts = {"sources_per_emotion": {**dict.fromkeys(EMOTIONS, 0), "anger": 3, "fear": 1, "unknown": 0},
             "models": [{"model_id": "minixception", "family": "minixception", "parent_id": None,
                         "predictions": 10, "available": True},
                        {"model_id": "rmn", "family": None, "parent_id": None, "predictions": 0,
                         "available": False},
                        {"model_id": "csv", "family": "external", "parent_id": None, "predictions": 10,
                         "available": None},
                        {"model_id": "old", "family": "deepface", "parent_id": None, "predictions": 4,
                         "available": None}]}
    counts = emotion_counts(facts)
    assert counts["emotion"].tolist() == list(EMOTIONS)  # 'unknown' only where some source has no label
    assert counts["n"].tolist() == [3, 0, 1, 0, 0, 0, 0]
    facts["sources_per_emotion"]["unknown"] = 2
    assert emotion_counts(facts)["emotion"].tolist() == [*EMOTIONS, "unknown"]
    status = model_status(facts)
    assert status.columns.tolist() == ["model_id", "family", "parent_id", "predictions", "available"]
    assert status["available"].tolist() == ["yes", "unavailable", "predictions only", "unknown"]
    assert status["family"].tolist() == ["minixception", "rmn", "external", "deepface"]


def test_headline_table(store):
    from disfer.analysis import study_report

    random_study(store, n_sources=7, raters_per_playlist=2, playlist_size=10, seed=3)
    report = study_report(store, bootstrap=0, consensus=False)
    table = headline_table(report)
    assert table.columns.tolist() == ["rater", "accuracy", "kappa", "fleiss_kappa", "vote_accuracy", "n"]
    assert table["rater"].tolist() == ["humans (majority vote)", "model_a", "model_b"]
    humans = table.iloc[0]
    assert humans["accuracy"] == pytest.approx(report["humans"]["accuracy"])
    assert humans["fleiss_kappa"] == pytest.approx(report["humans"]["fleiss_kappa"])
    assert humans["n"] == report["counts"]["voted_stimuli"] == 70
    assert table.loc[1, "kappa"] == pytest.approx(report["models"]["model_a"]["cohen_kappa"])
    assert table.loc[2, "n"] == report["models"]["model_b"]["n"] == 70
    assert pd.isna(table.loc[1, "fleiss_kappa"]) and pd.isna(table.loc[2, "vote_accuracy"])
    no_votes = headline_table({**report, "counts": {**report["counts"], "votes": 0}})
    assert no_votes["rater"].tolist() == ["model_a", "model_b"]
