import numpy as np
import pytest
from analysis_fixtures import insert_study, random_study
from scipy.stats import pearsonr
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import precision_recall_fscore_support

from disfer.analysis import confusion_matrix, load_study, offdiag_pearson, precision_recall
from disfer.analysis.confusion import confusion_by_condition, precision_recall_from_counts
from disfer.emotions import EMOTIONS


def test_hand_worked_matrix(store):
    votes = [("a", "1-original-0", "anger"), ("b", "1-original-0", "disgust"),
             ("a", "2-original-0", "fear"), ("b", "2-original-0", "fear")]
    insert_study(store, {1: "anger", 2: "fear"}, votes, predictions={"net": {"1-original-0": "fear"}})
    cm = confusion_matrix(store, "humans")
    assert list(cm.index) == list(EMOTIONS) and list(cm.columns) == list(EMOTIONS)
    assert cm.loc["anger", "anger"] == 0.5 and cm.loc["anger", "disgust"] == 0.5
    assert cm.loc["fear", "fear"] == 1.0
    assert cm.loc["sadness"].isna().all()  # no sad faces: an empty row
    assert confusion_matrix(store, "net", normalize=False).loc["anger", "fear"] == 1


def test_matches_scikit_learn_per_condition(store):
    drawn = random_study(store, n_sources=20, raters_per_playlist=3, seed=5)
    study = load_study(store)
    preds = drawn["predictions"][0].merge(drawn["stimuli"], on="stimulus_id")
    preds = preds[(preds["distortion"] == "gaussian_noise") & (preds["level"] == 2)]
    truth = [EMOTIONS[drawn["labels"][s - 1]] for s in preds["source_id"]]
    expected = sk_confusion_matrix(truth, preds["predicted"], labels=list(EMOTIONS), normalize="true")
    got = confusion_matrix(study, "model_a", "gaussian_noise", 2)
    rows = np.isfinite(got.to_numpy()).all(axis=1)
    assert np.allclose(got.to_numpy()[rows], expected[rows])
    p, r, _, support = precision_recall_fscore_support(truth, preds["predicted"], labels=list(EMOTIONS),
                                                       zero_division=np.nan)
    pr = precision_recall(study, "model_a", "gaussian_noise", 2)
    assert np.allclose(pr["precision"], p, equal_nan=True)
    assert np.allclose(pr["recall"], r, equal_nan=True)
    assert pr["support"].tolist() == support.tolist()


def test_offdiag_pearson_matches_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.random((7, 7)), rng.random((7, 7))
    off = ~np.eye(7, dtype=bool)
    assert offdiag_pearson(a, b) == pytest.approx(pearsonr(a[off], b[off]).statistic)
    # the diagonal does not matter
    b2 = b.copy()
    np.fill_diagonal(b2, 100.0)
    assert offdiag_pearson(a, b2) == pytest.approx(offdiag_pearson(a, b))


def test_offdiag_pearson_hand_worked():
    a = np.diag([1.0, 1.0])
    a[0, 1], a[1, 0] = 0.0, 1.0
    assert np.isnan(offdiag_pearson(a, a))  # two points only: undefined
    x = np.array([[9, 1, 2], [3, 9, 4], [5, 6, 9]], float)
    y = np.array([[0, 2, 4], [6, 0, 8], [10, 12, 0]], float)  # y = 2 x off the diagonal
    assert offdiag_pearson(x, y) == pytest.approx(1.0)


def test_precision_recall_from_counts_hand_worked():
    counts = np.array([[3, 1, 0], [2, 2, 0], [0, 0, 0]])
    precision, recall = precision_recall_from_counts(counts)
    assert precision[:2].tolist() == [3 / 5, 2 / 3] and np.isnan(precision[2])  # nothing answered 2
    assert recall[:2].tolist() == [3 / 4, 2 / 4] and np.isnan(recall[2])        # no trial labelled 2


@pytest.mark.parametrize("rater", ["humans", "majority", "model_a", "p0"])
def test_confusion_by_condition_matches_the_per_condition_matrices(store, rater):
    random_study(store, n_sources=14, raters_per_playlist=3, seed=2)
    study = load_study(store)
    by_condition = confusion_by_condition(study, rater)
    for c, row in study.conditions.iterrows():
        expected = confusion_matrix(study, rater, row["distortion"], row["level"], normalize=False)
        assert np.array_equal(by_condition[c], expected.to_numpy())
    assert np.array_equal(by_condition[-1], confusion_matrix(study, rater, normalize=False).to_numpy())
    assert by_condition[-1].sum() > 0
