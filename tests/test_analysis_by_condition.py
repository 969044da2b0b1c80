"""Humans and models condition by condition: condition names, every rater's confusion matrix in one
condition (against scikit-learn and a hand-worked study), and the report's error grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import CONDITIONS, insert_study, random_study
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from disfer.analysis import HUMANS, load_study
from disfer.analysis.by_condition import (
    GRID_COLUMNS,
    condition_names,
    confusion_matrices,
    confusion_panels,
    error_grid,
)
from disfer.emotions import EMOTIONS


def test_condition_names_in_canonical_order(store):
    random_study(store, n_sources=3, raters_per_playlist=1, playlist_size=10, seed=1)
    names, keys = condition_names(load_study(store))
    assert keys == CONDITIONS
    assert names == ["original"] + [f"{d} {lv}" for d, lv in CONDITIONS[1:]]


def test_confusion_matrices_match_scikit_learn(store):
    drawn = random_study(store, n_sources=14, raters_per_playlist=3, playlist_size=20, seed=6)
    study = load_study(store)
    matrices = confusion_matrices(study, "salt_pepper", 1)
    assert list(matrices) == [HUMANS, "model_a", "model_b"]
    stimuli = drawn["stimuli"].set_index("stimulus_id")
    label = {s: EMOTIONS[drawn["labels"][stimuli.loc[s, "source_id"] - 1]] for s in stimuli.index}
    here = set(stimuli.index[(stimuli["distortion"] == "salt_pepper") & (stimuli["level"] == 1)])
    votes = drawn["votes"][drawn["votes"]["stimulus_id"].isin(here)]
    preds = drawn["predictions"][1]
    preds = preds[preds["stimulus_id"].isin(here)]
    for rater, answers in ((HUMANS, votes["emotion"]), ("model_b", preds["predicted"])):
        trials = votes if rater == HUMANS else preds
        expected = sk_confusion_matrix([label[s] for s in trials["stimulus_id"]], answers, labels=list(EMOTIONS))
        got = matrices[rater]
        assert list(got.index) == list(EMOTIONS) and list(got.columns) == list(EMOTIONS)
        seen = expected.sum(axis=1) > 0
        assert np.allclose(got.to_numpy()[seen], (expected / expected.sum(axis=1, keepdims=True).clip(1))[seen])
        assert got.to_numpy()[~seen].size == 0 or np.isnan(got.to_numpy()[~seen]).all()


def test_confusion_matrices_leave_out_raters_without_a_labelled_trial(store):
    votes = [("a", "1-original-0", "anger"), ("b", "1-original-0", "fear")]
    insert_study(store, {1: "anger", 2: None}, votes,
                 predictions={"net": {"1-gaussian_blur-1": "fear"}, "blind": {"2-original-0": "fear"}})
    study = load_study(store)
    # Pooled: humans and net have labelled trials; blind only predicted the unlabelled source 2.
    pooled = confusion_matrices(study)
    assert list(pooled) == [HUMANS, "net"]
    assert pooled[HUMANS].loc["anger", "anger"] == 0.5 and pooled[HUMANS].loc["anger", "fear"] == 0.5
    assert list(confusion_matrices(study, "original", 0)) == [HUMANS]
    assert list(confusion_matrices(study, "gaussian_blur", 1)) == ["net"]
    assert confusion_matrices(study, "salt_pepper", 3) == {}


def test_confusion_matrices_without_votes_have_no_humans(store):
    insert_study(store, {1: "anger"}, predictions={"net": {"1-original-0": "anger"}})
    assert list(confusion_matrices(load_study(store))) == ["net"]


def report_with(votes: int) -> dict:
    def cond(distortion, level, r, k, n):
        return {"distortion": distortion, "level": level, "offdiag_pearson_r_vs_humans": r,
                "error_consistency_vs_humans": k, "n": n}

    return {"counts": {"votes": votes},
            "models": {"net": {"per_condition": [cond("original", 0, 0.5, 0.25, 14),
                                                 cond("gaussian_blur", 2, None, 0.1, 12)]},
                       "cnn": {"per_condition": [cond("salt_pepper", 3, -0.2, None, 9)]}}}


def test_error_grid_from_a_report():
    grid = error_grid(report_with(votes=30))
    expected = pd.DataFrame({"model": ["net", "net", "cnn"],
                             "condition": ["original", "gaussian_blur 2", "salt_pepper 3"],
                             "error_correlation": [0.5, np.nan, -0.2],
                             "error_consistency": [0.25, 0.1, np.nan], "n": [14, 12, 9]})
    pd.testing.assert_frame_equal(grid, expected)


def test_error_grid_is_empty_without_votes():
    grid = error_grid(report_with(votes=0))
    assert grid.empty and list(grid.columns) == GRID_COLUMNS
    assert grid["error_correlation"].dtype == float and grid["error_consistency"].dtype == float


@pytest.mark.parametrize("votes", [0, 1])
def test_error_grid_of_a_study_without_models(votes):
    assert error_grid({"counts": {"votes": votes}, "models": {}}).empty


def test_confusion_panels_are_the_matrices_of_the_original_and_each_level(store):
    random_study(store, n_sources=10, raters_per_playlist=2, playlist_size=20, seed=3)
    study = load_study(store)
    long, columns = confusion_panels(study, "gaussian_blur")
    assert columns == ["original", "gaussian_blur 1", "gaussian_blur 2", "gaussian_blur 3"]
    for name, (d, lv) in zip(columns, [("original", 0), ("gaussian_blur", 1), ("gaussian_blur", 2),
                                       ("gaussian_blur", 3)], strict=True):
        for rater, matrix in confusion_matrices(study, d, lv).items():
            cells = long[(long["condition"] == name) & (long["rater"] == rater)]
            got = cells.pivot(index="label", columns="predicted", values="value").reindex(
                index=matrix.index, columns=matrix.columns)
            assert np.allclose(got.to_numpy(), matrix.to_numpy(), equal_nan=True)
    pooled, pooled_columns = confusion_panels(study)
    assert pooled_columns == ["all conditions"] and set(pooled["rater"]) == set(confusion_matrices(study))


def test_confusion_panels_of_an_empty_study_are_empty(store):
    insert_study(store, {1: None}, [])
    long, columns = confusion_panels(load_study(store), "gaussian_blur")
    assert long.empty and columns == []
