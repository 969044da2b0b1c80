import json
from collections import Counter

import numpy as np
import pytest
from analysis_fixtures import random_study
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from disfer.analysis import report_text, study_report
from disfer.cli import main
from disfer.emotions import EMOTIONS


def expected_majority(votes) -> dict[str, str]:
    """The human majority per stimulus, counted here from the raw (stimulus_id, emotion) votes with
    the documented tie rule (the first emotion in canonical order among the most voted), so the
    report is checked against a computation that shares no code with it."""
    tallies: dict[str, Counter] = {}
    for stimulus_id, emotion in votes:
        tallies.setdefault(stimulus_id, Counter())[emotion] += 1
    out = {}
    for stimulus_id, tally in tallies.items():
        top = max(tally.values())
        out[stimulus_id] = next(e for e in EMOTIONS if tally[e] == top)
    return out


@pytest.fixture
def study_store(store):
    drawn = random_study(store, n_sources=24, raters_per_playlist=5, seed=11,
                         models={"net": 0.7, "net-ft-blur": 0.8}, parents={"net-ft-blur": "net"})
    return store, drawn


def test_report_follows_the_json_contract(study_store):
    store, _ = study_store
    report = json.loads(json.dumps(study_report(store, bootstrap=200, seed=3)))
    c = report["counts"]
    assert (c["sources"], c["stimuli"], c["votes"]) == (24, 240, 240 * 5)
    assert c["participants"] == 6 * 5  # 240 stimuli / 40 per playlist, 5 raters each
    h = report["humans"]
    for key in ("accuracy", "fleiss_kappa"):
        assert isinstance(h[key], float)
    assert 0 <= h["accuracy"] <= 1 and isinstance(h["tied_stimuli"], int)
    assert set(h["pi_bins"]) == {"gt_0_9", "gt_0_5", "lt_0_3"}
    assert set(h["participant_accuracy"]) >= {"mean", "min", "max"}
    assert len(report["conditions"]) == 3 * 10
    for row in report["conditions"]:
        assert row["rater"] in ("humans", "net", "net-ft-blur")
        assert row["distortion"] in ("original", "gaussian_blur", "gaussian_noise", "salt_pepper")
        assert row["ci_low"] <= row["accuracy"] <= row["ci_high"] and row["n"] == 24
    for m in ("net", "net-ft-blur"):
        for key in ("accuracy", "cohen_kappa", "mcnemar_vs_humans_p", "offdiag_pearson_r_vs_humans",
                    "error_consistency_vs_humans"):
            assert isinstance(report["models"][m][key], float), key
    assert "mcnemar_vs_parent_p" in report["models"]["net-ft-blur"]
    assert isinstance(report["audit"]["contradicted_stimuli"], int) and report["audit"]["measured"] is True
    assert isinstance(report["audit"]["all_versions_misclassified_sources"], list)


def test_report_numbers_match_independent_computations(study_store):
    store, drawn = study_store
    report = study_report(store, bootstrap=0, consensus=False)
    stimuli = drawn["stimuli"]
    truth = np.array([EMOTIONS[drawn["labels"][s - 1]] for s in stimuli["source_id"]])
    counts = drawn["votes"].groupby(["stimulus_id", "emotion"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=list(EMOTIONS), fill_value=0)
    assert report["humans"]["fleiss_kappa"] == pytest.approx(sm_fleiss_kappa(counts.to_numpy()))
    pred = drawn["predictions"][0].set_index("stimulus_id").loc[stimuli["stimulus_id"], "predicted"].to_numpy()
    net = report["models"]["net"]
    assert net["accuracy"] == pytest.approx(np.mean(pred == truth))
    assert net["cohen_kappa"] == pytest.approx(cohen_kappa_score(truth, pred))
    votes = drawn["votes"]
    by_stimulus = expected_majority(zip(votes["stimulus_id"], votes["emotion"], strict=True))
    majority = np.array([by_stimulus[sid] for sid in stimuli["stimulus_id"]])
    human_ok = majority == truth
    model_ok = pred == truth
    table = [[np.sum(model_ok & human_ok), np.sum(model_ok & ~human_ok)],
             [np.sum(~model_ok & human_ok), np.sum(~model_ok & ~human_ok)]]
    exact = table[0][1] + table[1][0] < 25
    assert net["mcnemar_vs_humans_p"] == pytest.approx(mcnemar(table, exact=exact, correction=True).pvalue)
    assert report["humans"]["accuracy"] == pytest.approx(human_ok.mean())
    assert report["humans"]["cohen_kappa"] == pytest.approx(cohen_kappa_score(truth, majority))
    wrong = (~human_ok).sum()
    assert report["audit"]["contradicted_stimuli"] == wrong


def test_cli_report_json_and_text(study_store, capsys):
    store, _ = study_store
    assert main(["--db", str(store.path), "report", "--json", "--bootstrap", "50", "--seed", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["stimuli"] == 240
    assert main(["--db", str(store.path), "report", "--bootstrap", "0", "--no-consensus"]) == 0
    text = capsys.readouterr().out
    assert "Fleiss' kappa" in text and "net-ft-blur" in text


def test_report_on_an_empty_store(store):
    report = json.loads(json.dumps(study_report(store, bootstrap=10)))
    assert report["counts"]["stimuli"] == 0 and report["models"] == {}
    assert report["humans"]["accuracy"] is None
    # nothing measured is null, never a 0 that reads as "the labels are clean"
    assert report["audit"]["measured"] is False
    assert report["audit"]["contradicted_stimuli"] is None
    assert report["audit"]["all_versions_misclassified_count"] is None
    assert "not measured yet" in report_text(report)


def test_report_with_curated_labels(store):
    from analysis_fixtures import insert_study

    votes = [(p, "1-original-0", "disgust") for p in "abc"] + [(p, "2-original-0", "fear") for p in "abc"]
    insert_study(store, {1: "anger", 2: "fear"}, votes)
    assert study_report(store, bootstrap=0)["humans"]["accuracy"] == 0.5
    with store.write() as con:
        con.execute("INSERT INTO curation_events (source_id, curator, labels, status)"
                    " VALUES (1, 'ann', ['disgust'], 'relabeled')")
    curated = study_report(store, bootstrap=0, label_kind="curated")
    assert curated["label_kind"] == "curated" and curated["humans"]["accuracy"] == 1.0
    assert curated["audit"]["contradicted_stimuli"] == 0


def test_report_on_a_study_built_by_the_pipeline(built_study, tmp_path, capsys):
    # Ingest -> build -> playlists (foundation), then votes and external predictions as CSV files:
    # the report must count exactly what went in.
    from disfer.data.votes import import_votes

    with built_study.read() as con:
        stimuli = con.execute("SELECT s.stimulus_id, src.original_label FROM stimuli s"
                              " JOIN sources src USING (source_id) ORDER BY 1").fetchall()
    votes = tmp_path / "votes.csv"
    lines = ["participant_id,stimulus_id,emotion"]
    cast = []
    for i, (sid, label) in enumerate(stimuli):
        for p in range(3):
            cast.append((sid, label if (i + p) % 4 else "neutral"))
            lines.append(f"p{p},{sid},{cast[-1][1]}")
    votes.write_text("\n".join(lines) + "\n")
    import_votes(built_study, votes)
    preds = tmp_path / "preds.csv"
    preds.write_text("stimulus_id,emotion\n" + "".join(f"{sid},{label}\n" for sid, label in stimuli[::2]))
    assert main(["--db", str(built_study.path), "predictions", "import", str(preds), "--model", "oracle"]) == 0
    capsys.readouterr()
    report = study_report(built_study, bootstrap=20)
    assert report["counts"]["stimuli"] == len(stimuli) == 280
    assert report["counts"]["votes"] == 3 * 280 and report["counts"]["participants"] == 3
    assert report["counts"]["playlists"] == 10
    assert report["models"]["oracle"]["accuracy"] == 1.0 and report["models"]["oracle"]["n"] == 140
    majority = expected_majority(cast)
    assert report["humans"]["accuracy"] == pytest.approx(np.mean([majority[sid] == label for sid, label in stimuli]))


def test_report_per_emotion_scores_match_scikit_learn(study_store):
    from sklearn.metrics import precision_recall_fscore_support

    store, drawn = study_store
    report = study_report(store, bootstrap=0, consensus=False)
    stimuli = drawn["stimuli"]
    truth = [EMOTIONS[drawn["labels"][s - 1]] for s in stimuli["source_id"]]
    pred = drawn["predictions"][0].set_index("stimulus_id").loc[stimuli["stimulus_id"], "predicted"]
    p, r, _, _ = precision_recall_fscore_support(truth, pred, labels=list(EMOTIONS), zero_division=np.nan)
    got = report["models"]["net"]["per_emotion"]
    assert np.allclose([got[e]["precision"] for e in EMOTIONS], p, equal_nan=True)
    assert np.allclose([got[e]["recall"] for e in EMOTIONS], r, equal_nan=True)
    assert sum(report["humans"]["participant_accuracy"]["histogram"]["counts"]) == 30


@pytest.mark.parametrize("kind", ["votes only", "predictions only", "no labels"])
def test_report_on_partial_studies(store, kind):
    from analysis_fixtures import insert_study

    votes = [(p, f"{s}-original-0", "fear") for p in "ab" for s in (1, 2)]
    preds = {"net": {"1-original-0": "fear", "2-original-0": "anger"}}
    labels = {1: None, 2: None} if kind == "no labels" else {1: "fear", 2: "anger"}
    insert_study(store, labels, votes if kind != "predictions only" else [],
                 predictions=preds if kind != "votes only" else None, stimuli=["1-original-0", "2-original-0"])
    report = json.loads(json.dumps(study_report(store, bootstrap=10)))
    assert report["counts"]["stimuli"] == 2
    if kind == "votes only":
        assert report["humans"]["accuracy"] == 0.5 and report["models"] == {}
    elif kind == "predictions only":
        assert report["humans"]["accuracy"] is None and report["models"]["net"]["accuracy"] == 1.0
        assert report["models"]["net"]["mcnemar_vs_humans_p"] is None
        assert report["audit"]["contradicted_stimuli"] is None  # no votes: not measured
    else:
        assert report["humans"]["accuracy"] is None and report["models"]["net"]["accuracy"] is None
        assert report["humans"]["fleiss_kappa"] is None  # every vote 'fear': chance agreement is total
