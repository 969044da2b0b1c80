import numpy as np
import pytest
from analysis_fixtures import insert_study, random_study

from disfer.analysis import load_study, robustness_curve
from disfer.analysis.bootstrap import bootstrap_accuracy


def _naive(source, correct, n_sources, replicates, seed, level=0.95):
    # The same resampling, one replicate at a time (same draws from the same generator).
    rng = np.random.default_rng(seed)
    accs = []
    for _ in range(replicates):
        draw = rng.integers(0, n_sources, size=n_sources)
        w = np.bincount(draw, minlength=n_sources)[source]
        accs.append((w * correct).sum() / w.sum())
    return np.quantile(accs, [(1 - level) / 2, 1 - (1 - level) / 2])


def test_matches_a_replicate_by_replicate_bootstrap():
    rng = np.random.default_rng(0)
    source = np.repeat(np.arange(30), 3)
    correct = rng.random(90) < 0.6
    low, high = bootstrap_accuracy(source, np.zeros(90, int), correct, 30, 1, replicates=250, seed=7)
    ref = _naive(source, correct, 30, 250, 7)
    assert low[0] == pytest.approx(ref[0], abs=1e-6) and high[0] == pytest.approx(ref[1], abs=1e-6)


def test_matches_it_for_several_keys_over_several_chunks():
    # Keys with their own trials (one key shares its sources' trial counts with another, one sees
    # only some sources, one none), more replicates than one chunk: each key's interval is the
    # replicate-by-replicate bootstrap of its own trials, on the same draws.
    rng = np.random.default_rng(3)
    n_sources = 40
    source = np.concatenate([np.repeat(np.arange(40), 2), np.repeat(np.arange(40), 2), np.arange(0, 40, 3)])
    key = np.concatenate([np.zeros(80, int), np.full(80, 2), np.full(14, 3)])
    correct = rng.random(len(source)) < 0.55
    low, high = bootstrap_accuracy(source, key, correct, n_sources, 5, replicates=260, seed=11)
    for k in (0, 2, 3):
        ref = _naive(source[key == k], correct[key == k], n_sources, 260, 11)
        assert low[k] == pytest.approx(ref[0], abs=1e-6) and high[k] == pytest.approx(ref[1], abs=1e-6)
    assert np.isnan(low[[1, 4]]).all() and np.isnan(high[[1, 4]]).all()


def test_seeded_and_bracketing_the_accuracy(store):
    random_study(store, n_sources=30, raters_per_playlist=3, seed=8)
    study = load_study(store)
    a = robustness_curve(study, bootstrap=300, seed=1)
    b = robustness_curve(study, bootstrap=300, seed=1)
    c = robustness_curve(study, bootstrap=300, seed=2)
    assert a.equals(b) and not a.equals(c)
    assert (a["ci_low"] <= a["accuracy"] + 1e-9).all() and (a["accuracy"] <= a["ci_high"] + 1e-9).all()
    assert set(a["rater"]) == {"humans", "model_a", "model_b"}
    assert len(a) == 3 * 10 and (a["n"] == 30).all()


def test_curve_accuracy_hand_worked(store):
    votes = [("a", "1-original-0", "anger"), ("a", "2-original-0", "anger"),
             ("a", "1-gaussian_blur-1", "fear"), ("a", "2-gaussian_blur-1", "happiness")]
    insert_study(store, {1: "anger", 2: "happiness"}, votes,
                 predictions={"net": {"1-original-0": "anger", "2-original-0": "happiness"}})
    curve = robustness_curve(store, bootstrap=0).set_index(["rater", "distortion", "level"])
    assert curve.loc[("humans", "original", 0), "accuracy"] == 0.5
    assert curve.loc[("humans", "gaussian_blur", 1), "accuracy"] == 0.5
    assert curve.loc[("net", "original", 0), "accuracy"] == 1.0
    assert ("net", "gaussian_blur", 1) not in curve.index  # no predictions there
    assert curve["ci_low"].isna().all()
