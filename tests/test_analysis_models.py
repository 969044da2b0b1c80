import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.contingency_tables import mcnemar

from disfer.analysis import cohen_kappa, mcnemar_test
from disfer.analysis.models import mcnemar_statistic


def test_cohen_kappa_matches_scikit_learn():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 7, 500)
    pred = np.where(rng.random(500) < 0.6, ref, rng.integers(0, 7, 500))
    assert cohen_kappa(ref, pred) == pytest.approx(cohen_kappa_score(ref, pred))


def test_cohen_kappa_hand_worked():
    # 2x2 over categories 0/1: table [[2, 1], [0, 1]] -> p_o = 3/4, p_e = (3*2 + 1*2)/16 = 1/2
    assert cohen_kappa([0, 0, 0, 1], [0, 0, 1, 1], k=2) == pytest.approx(0.5)


def test_mcnemar_exact_when_few_discordant_pairs():
    a = np.array([True] * 10 + [True] * 6 + [False] * 2 + [False] * 5)
    b = np.array([True] * 10 + [False] * 6 + [True] * 2 + [False] * 5)
    res = mcnemar_test(a, b)
    assert res.table == ((10, 6), (2, 5)) and res.exact
    assert res.pvalue == pytest.approx(mcnemar(np.array(res.table), exact=True).pvalue)
    # by hand: two-sided binomial, 2 of 8 discordant -> 2 * P(X <= 2) = 2 * 37/256
    assert res.pvalue == pytest.approx(2 * 37 / 256)


def test_mcnemar_chi_square_with_many_discordant_pairs():
    rng = np.random.default_rng(2)
    a = rng.random(400) < 0.7
    b = rng.random(400) < 0.5
    res = mcnemar_test(a, b)
    assert not res.exact
    ref = mcnemar(np.array(res.table), exact=False, correction=True)
    assert res.pvalue == pytest.approx(ref.pvalue) and res.statistic == pytest.approx(ref.statistic)


@pytest.mark.parametrize("only_a, only_b", [(0, 0), (0, 3), (6, 2), (12, 12), (30, 70), (400, 150),
                                            (5000, 5400)])
def test_mcnemar_statistic_matches_statsmodels(only_a, only_b):
    # scipy.special's distributions, not scipy.stats' (statsmodels): the same figures.
    table = np.array([[9, only_a], [only_b, 4]])
    for exact in (True, False) if only_a + only_b else (True,):
        ref = mcnemar(table, exact=exact, correction=True)
        statistic, pvalue = mcnemar_statistic(only_a, only_b, exact)
        assert statistic == pytest.approx(ref.statistic, rel=1e-12)
        assert pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=0)
