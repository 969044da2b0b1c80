import numpy as np
import pytest
from analysis_fixtures import insert_study
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from disfer.analysis import agreement_per_stimulus, fleiss_kappa, pairwise_agreement, pi_bins
from disfer.analysis.overview import crowd_agreement_per_source, crowd_summary


def test_p_i_hand_worked():
    # 4 votes 3-1: pairs agreeing = 3*2 + 0 = 6 of 4*3 = 12 -> 0.5; 5 votes all alike -> 1;
    # 3 votes all different -> 0; a single vote has no pairs -> NaN.
    counts = np.array([[3, 1, 0, 0, 0, 0, 0], [0, 0, 5, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0],
                       [0, 0, 0, 1, 0, 0, 0]])
    p = pairwise_agreement(counts)
    assert p[:3].tolist() == [0.5, 1.0, 0.0]
    assert np.isnan(p[3])
    assert pi_bins(p) == {"gt_0_9": 1, "gt_0_5": 1, "lt_0_3": 1}


def test_fleiss_matches_statsmodels_with_a_constant_n():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(7, 0.5), size=200)
    counts = np.array([rng.multinomial(50, p) for p in probs])
    assert fleiss_kappa(counts) == pytest.approx(sm_fleiss_kappa(counts, method="fleiss"), abs=1e-12)


def test_fleiss_with_varying_n_hand_worked():
    # item 1: n=2, both A -> P=1; item 2: n=3, A,B,B -> P=(0+2)/6=1/3.
    # p_A = 3/5, p_B = 2/5 -> P_e = 9/25 + 4/25 = 13/25; P_bar = 2/3
    counts = np.array([[2, 0], [1, 2]])
    expected = (2 / 3 - 13 / 25) / (1 - 13 / 25)
    assert fleiss_kappa(counts) == pytest.approx(expected)


def test_agreement_per_stimulus_from_the_store(store):
    votes = [(p, "1-original-0", e) for p, e in zip("abcd", ["fear", "fear", "fear", "anger"], strict=True)]
    votes += [(p, "2-original-0", "happiness") for p in "abc"]
    insert_study(store, {1: "fear", 2: "happiness"}, votes)
    table = agreement_per_stimulus(store).set_index("stimulus_id")
    assert table.loc["1-original-0", "p_i"] == 0.5 and table.loc["1-original-0", "n_votes"] == 4
    assert table.loc["2-original-0", "p_i"] == 1.0
    assert fleiss_kappa(store) == pytest.approx(fleiss_kappa(np.array([[1, 0, 3, 0], [0, 0, 0, 3]])))


def test_ferplus_crowd_counts(store):
    insert_study(store, {1: "happiness", 2: "anger", 3: None}, stimuli=["1-original-0"])
    rows = [(1, "happiness", 8), (1, "neutral", 2), (2, "sadness", 6), (2, "anger", 3), (2, "NF", 1),
            (3, "surprise", 10)]
    with store.write() as con:
        for src, cat, n in rows:
            con.execute("INSERT INTO crowd_counts VALUES ('ferplus', ?, ?, ?)", [src, cat, n])
    s = crowd_summary(store, "ferplus")
    assert s["sources"] == 3 and s["votes"] == 30
    assert s["majority_vs_label"] == {"accuracy": 0.5, "n": 2, "contradicted": 1}
    p1 = (8 * 7 + 2 * 1) / 90
    p2 = (6 * 5 + 3 * 2) / 90
    assert s["mean_p_i"] == pytest.approx((p1 + p2 + 1) / 3)
    table = crowd_agreement_per_source(store).set_index("source_id")
    assert table.loc[1, "p_i"] == pytest.approx(p1) and table.loc[1, "majority"] == "happiness"
    assert table.loc[2, "majority"] == "sadness" and table.loc[2, "majority_share"] == pytest.approx(0.6)
