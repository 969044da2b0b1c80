"""Issue 14, item 1: a variant is compared with its parent on held-out stimuli only.

Two stored raters stand in for a parent and its variant (predictions written directly, no torch),
with a registered configuration naming the sources the variant trained and validated on; the
report's held-out figures are then checked against an independent computation (SQL + statsmodels).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar

from disfer.analysis import load_study, study_report
from disfer.analysis.heldout import heldout_comparison, heldout_mask, variant_training
from disfer.emotions import EMOTIONS
from disfer.finetune.compare import curve_for_chart


def _register(store, train: list[int], val: list[int], seed: int = 0, protocol: str = "paper",
              best: float = 0.25, before: float = 0.321) -> None:
    """'base' and its variant 'base-ft-x', each predicting every stimulus (at random, seeded)."""
    rng = np.random.default_rng(seed)
    config = {"protocol": protocol, "parent": "base", "train_sources": train, "val_sources": val,
              "best_val_accuracy": best, "parent_val_accuracy": before}
    with store.write() as con:
        con.execute("INSERT INTO models (model_id, family, parent_id, config) VALUES "
                    "('base', 'external', NULL, NULL), ('base-ft-x', 'external', 'base', ?)",
                    [json.dumps(config)])
        rows = con.execute("SELECT st.stimulus_id, s.original_label FROM stimuli st "
                           "JOIN sources s USING (source_id) ORDER BY 1").fetchall()
        for model, p_right in (("base", 0.4), ("base-ft-x", 0.6)):
            for sid, label in rows:
                pred = label if rng.random() < p_right else EMOTIONS[int(rng.integers(7))]
                probs = [1.0 if e == pred else 0.0 for e in EMOTIONS]
                con.execute(f"INSERT INTO predictions (model_id, stimulus_id, {', '.join(EMOTIONS)}, predicted) "
                            f"VALUES (?, ?, {', '.join('?' * 7)}, ?)", [model, sid, *probs, pred])


def _study_sources(store) -> list[int]:
    with store.read() as con:
        return [r[0] for r in con.execute("SELECT DISTINCT source_id FROM stimuli ORDER BY 1").fetchall()]


def test_report_compares_on_held_out_stimuli_only_and_matches_statsmodels(built_study):
    sources = _study_sources(built_study)
    train, val = sources[:14], sources[14:18]          # 10 faces (100 stimuli) held out
    _register(built_study, train, val)
    report = study_report(built_study, bootstrap=0, consensus=False)
    m = report["models"]["base-ft-x"]
    assert m["training"]["protocol"] == "paper"
    assert m["training"]["train_sources"] == train and m["training"]["val_sources"] == val
    assert m["training"]["worse_than_parent_on_validation"] is True
    assert "training" not in report["models"]["base"]

    # Independently: the stimuli of the other sources, both models' right/wrong, exact McNemar.
    with built_study.read() as con:
        rows = con.execute(
            "SELECT st.stimulus_id, st.source_id, s.original_label, a.predicted, b.predicted "
            "FROM stimuli st JOIN sources s USING (source_id) "
            "JOIN predictions a ON a.stimulus_id = st.stimulus_id AND a.model_id = 'base-ft-x' "
            "JOIN predictions b ON b.stimulus_id = st.stimulus_id AND b.model_id = 'base'").fetchall()
    held = [r for r in rows if r[1] not in set(train) | set(val)]
    assert {r[1] for r in held}.isdisjoint(train + val) and len(held) == 100
    v = np.array([r[3] == r[2] for r in held])
    p = np.array([r[4] == r[2] for r in held])
    table = [[int((v & p).sum()), int((v & ~p).sum())], [int((~v & p).sum()), int((~v & ~p).sum())]]
    h = m["heldout"]
    assert h["n"] == 100 and h["sources"] == 10
    assert h["accuracy"] == pytest.approx(v.mean()) and h["parent_accuracy"] == pytest.approx(p.mean())
    assert h["mcnemar_vs_parent_table"] == table
    assert h["mcnemar_vs_parent_p"] == pytest.approx(mcnemar(np.array(table), exact=True).pvalue, rel=1e-12)
    # the all-stimuli test stays, over all 280 (training images included)
    assert m["mcnemar_vs_parent"]["n"] == 280


def test_held_out_set_is_disjoint_from_training_and_validation(built_study):
    sources = _study_sources(built_study)
    train, val = sources[::3], sources[1::3]
    _register(built_study, train, val)
    study = load_study(built_study)
    mask = heldout_mask(study, train, val)
    held_sources = set(study.stimuli.loc[mask, "source_id"])
    assert held_sources == set(sources) - set(train) - set(val)
    assert held_sources.isdisjoint(train) and held_sources.isdisjoint(val)
    result = heldout_comparison(study, "base-ft-x", "base", train, val)
    assert result.n == int(mask.sum()) == 10 * len(held_sources)
    assert result.per_condition["n"].sum() == result.n
    assert set(result.per_condition["distortion"]) == {"original", "gaussian_blur", "gaussian_noise",
                                                       "salt_pepper"}


def test_no_held_out_source_says_so_with_nulls(built_study, capsys):
    sources = _study_sources(built_study)
    _register(built_study, sources[:20], sources[20:])
    report = study_report(built_study, bootstrap=0, consensus=False)
    h = report["models"]["base-ft-x"]["heldout"]
    assert h["n"] == 0 and h["accuracy"] is None and h["parent_accuracy"] is None
    assert h["mcnemar_vs_parent_p"] is None and "no held-out source" in h["note"]
    from disfer.analysis import report_text

    text = report_text(report)
    assert "no held-out source" in text
    assert "worse than its parent on validation: 0.250 vs 0.321" in text
    assert "training images included" in text


def test_variant_training_reads_the_registered_configuration(built_study):
    _register(built_study, [1, 2], [3], best=0.5, before=0.4, protocol="external")
    t = variant_training(built_study)
    assert list(t) == ["base-ft-x"]
    assert t["base-ft-x"]["parent"] == "base" and t["base-ft-x"]["protocol"] == "external"
    assert t["base-ft-x"]["worse_than_parent_on_validation"] is False


def test_the_training_chart_has_no_series_without_a_line():
    one_epoch = [{"epoch": 0, "train_accuracy": None, "val_accuracy": 0.3},
                 {"epoch": 1, "train_accuracy": 0.4, "val_accuracy": 0.25}]
    assert list(curve_for_chart(one_epoch).columns) == ["val_accuracy"]
    two = [*one_epoch, {"epoch": 2, "train_accuracy": 0.5, "val_accuracy": 0.35}]
    assert set(curve_for_chart(two).columns) == {"train_accuracy", "val_accuracy"}
