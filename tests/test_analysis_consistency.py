import numpy as np
import pytest
from analysis_fixtures import random_study

from disfer.analysis import error_consistency, load_study, model_vs_majority, model_vs_participants
from disfer.analysis.humans import majority_arrays


def test_hand_worked():
    a = [True, True, False, False]
    b = [True, False, False, True]
    ec = error_consistency(a, b)
    # observed: trials 1 and 3 agree -> 0.5; expected: 0.5*0.5 + 0.5*0.5 = 0.5 -> kappa 0
    assert (ec.observed, ec.expected, ec.kappa, ec.n) == (0.5, 0.5, 0.0, 4)
    same = error_consistency([True, False, True, True], [True, False, True, True])
    assert same.kappa == pytest.approx(1.0)
    with pytest.raises(ValueError, match="align"):
        error_consistency([True], [True, False])


def test_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.7
    b = np.where(rng.random(300) < 0.5, a, rng.random(300) < 0.6)
    pa, pb = a.mean(), b.mean()
    cexp = pa * pb + (1 - pa) * (1 - pb)
    cobs = np.mean(a == b)
    assert error_consistency(a, b).kappa == pytest.approx((cobs - cexp) / (1 - cexp))


def test_model_against_majority_and_participants(store):
    random_study(store, n_sources=12, raters_per_playlist=4, seed=6)
    study = load_study(store)
    _, _, maj_ok = majority_arrays(study)
    _, model_ok = study.model_correct("model_a")
    assert model_vs_majority(study, "model_a").kappa == pytest.approx(error_consistency(model_ok, maj_ok).kappa)
    table = model_vs_participants(study, "model_a").set_index("participant_id")
    defined, vote_ok = study.vote_correct()
    for p in ("p0", "p5"):
        sel = study.participants[study.vote_rater] == p
        ref = error_consistency(vote_ok[sel], model_ok[study.vote_stim[sel]])
        assert table.loc[p, "kappa"] == pytest.approx(ref.kappa)
        assert table.loc[p, "n"] == ref.n


def test_undefined_when_both_raters_are_always_right():
    ec = error_consistency([True, True, True], [True, True, True])
    assert ec.observed == 1.0 and ec.expected == 1.0 and np.isnan(ec.kappa)
