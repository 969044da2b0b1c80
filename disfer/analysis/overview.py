"""What the store holds, in counts, and the tables of the dashboard's front page (models and their
weights, the headline table); another crowd's vote counts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from disfer.analysis.agreement import agreement_summary, pairwise_agreement
from disfer.analysis.humans import emotion_names, majority_from_counts
from disfer.emotions import EMOTION_INDEX, EMOTIONS
from disfer.ledger import current_ground_truth

MODEL_WEIGHTS_COLUMNS = ["model", "family", "available", "weights", "note"]


def model_weights(store=None) -> pd.DataFrame:
    """Every model the registry knows (the built-in ones, then the store's fine-tuned variants):
    model, family, available (its weights file is here), weights (the file in use, missing where
    absent), note ('ready', or where the file goes).

    Importing the registry imports torch (seconds), so it is imported here, on the first call, and
    never by the report.
    """
    from disfer.models.registry import list_models

    return pd.DataFrame([{"model": m.name, "family": m.family, "available": m.weights_present,
                          "weights": m.weights_path, "note": "ready" if m.weights_present else m.hint}
                         for m in list_models(store)], columns=MODEL_WEIGHTS_COLUMNS)


def ready_models(store=None) -> list[str]:
    """Models whose weights are here (they can predict and explain), in registry order."""
    table = model_weights(store)
    return [str(m) for m in table.loc[table["available"].astype(bool), "model"]]


def fine_tunable_models(store=None) -> list[str]:
    """Models whose weights are here and whose family has an adapter to fine-tune, in registry order."""
    from disfer.models.registry import FAMILIES

    table = model_weights(store)
    usable = table["available"].astype(bool) & table["family"].isin(list(FAMILIES))
    return [str(m) for m in table.loc[usable, "model"]]


def curated_source_count(store) -> int:
    """How many sources have a curated ground truth (any status, excluded and disputed included)."""
    return len(current_ground_truth(store))


def overview(store, availability: bool = True) -> dict:
    """Counts of the store: sources per emotion (all ingested; study_sources and
    study_sources_per_emotion: those built into the study's stimuli), stimuli, playlists,
    participants, votes, models, predictions (all models together).

    models: one dict per model known to the store or the registry (model_id, family, parent_id,
    predictions, available: weights present per the registry, None where it does not say).
    availability=False skips the registry (and its torch import). study_kind: from study_meta.
    """
    with store.read() as con:
        per_emotion = dict(con.execute(
            "SELECT coalesce(original_label, 'unknown'), count(*) FROM sources GROUP BY 1").fetchall())
        # The study's faces: the sources built into stimuli (a real store ingests thousands more).
        in_study = dict(con.execute(
            "SELECT coalesce(original_label, 'unknown'), count(*) FROM sources"
            " WHERE source_id IN (SELECT source_id FROM stimuli) GROUP BY 1").fetchall())
        one = con.execute(
            "SELECT (SELECT count(*) FROM sources), (SELECT count(*) FROM stimuli),"
            " (SELECT count(DISTINCT playlist_id) FROM playlists),"
            " (SELECT count(*) FROM participants WHERE crowd = 'study'),"
            " (SELECT count(*) FROM votes),"
            " (SELECT count(DISTINCT source_id) FROM crowd_counts WHERE crowd = 'ferplus')").fetchall()[0]
        models = con.execute(
            "SELECT m.model_id, m.family, m.parent_id, count(p.stimulus_id) FROM models m"
            " LEFT JOIN predictions p USING (model_id) GROUP BY ALL ORDER BY m.model_id").fetchall()
        kind = con.execute("SELECT value FROM study_meta WHERE key = 'study_kind'").fetchall()
    weights = model_weights(store) if availability else pd.DataFrame(columns=MODEL_WEIGHTS_COLUMNS)
    available = {str(m): bool(a) for m, a in zip(weights["model"], weights["available"], strict=True)}
    rows = [{"model_id": m, "family": f, "parent_id": p, "predictions": int(n),
             "available": available.get(m)} for m, f, p, n in models]
    for mid in sorted(set(available) - {r["model_id"] for r in rows}):
        rows.append({"model_id": mid, "family": None, "parent_id": None, "predictions": 0,
                     "available": available[mid]})
    return {
        "study_kind": kind[0][0] if kind else None,
        "sources": int(one[0]),
        "sources_per_emotion": {e: int(per_emotion.get(e, 0)) for e in (*EMOTIONS, "unknown")},
        "study_sources": int(sum(in_study.values())),
        "study_sources_per_emotion": {e: int(in_study.get(e, 0)) for e in (*EMOTIONS, "unknown")},
        "stimuli": int(one[1]), "playlists": int(one[2]), "participants": int(one[3]),
        "votes": int(one[4]), "ferplus_sources": int(one[5]), "models": rows,
        "predictions": sum(r["predictions"] for r in rows),
    }


HEADLINE_COLUMNS = ["rater", "accuracy", "kappa", "fleiss_kappa", "vote_accuracy", "n"]
MODEL_STATUS_COLUMNS = ["model_id", "family", "parent_id", "predictions", "available"]


def emotion_counts(facts: dict, study: bool = True) -> pd.DataFrame:
    """emotion, n: the sources per original label of an `overview`, the seven emotions in canonical
    order, then 'unknown' where some sources have no label. study: only the sources built into the
    study's stimuli (all ingested sources where the store has no study, or with study=False)."""
    key = "study_sources_per_emotion" if study and facts.get("study_sources") else "sources_per_emotion"
    table = pd.DataFrame({"emotion": list(facts[key]), "n": list(facts[key].values())})
    return table[(table["n"] > 0) | table["emotion"].isin(EMOTIONS)].reset_index(drop=True)


def model_counts(facts: dict) -> dict:
    """How many models: run (with predictions on this study), available (weights here), registered
    (known to the store or the registry), for the Overview's count and its explanation."""
    models = facts["models"]
    return {"run": sum(1 for m in models if m["predictions"]),
            "available": sum(1 for m in models if m["available"]),
            "registered": len(models)}


def model_status(facts: dict) -> pd.DataFrame:
    """The models of an `overview`, for display: model_id, family (the model's own id for a built-in
    model not run on this study), parent_id, predictions, available ('yes', 'unavailable', 'predictions
    only' for imported predictions, 'unknown' where the registry was not asked)."""
    table = pd.DataFrame(facts["models"], columns=MODEL_STATUS_COLUMNS)
    table["available"] = table["available"].map({True: "yes", False: "unavailable"}).fillna("unknown")
    table.loc[table["family"] == "external", "available"] = "predictions only"
    table["family"] = table["family"].fillna(table["model_id"])
    table["parent_id"] = table["parent_id"].fillna("")  # a blank, not "None": built-in models have no parent
    return table


def headline_table(report: dict) -> pd.DataFrame:
    """The paper's headline table from a `study_report`: one row for the human majority (when there
    are votes), then one per model. Columns: rater, accuracy, kappa (Cohen's, against the labels),
    fleiss_kappa and vote_accuracy (humans only: the crowd's agreement and a single vote's
    accuracy), n (voted stimuli for the humans, predicted labelled stimuli for a model)."""
    rows = []
    if report["counts"]["votes"]:
        humans = report["humans"]
        rows.append({"rater": "humans (majority vote)", "accuracy": humans["accuracy"],
                     "kappa": humans["cohen_kappa"], "fleiss_kappa": humans["fleiss_kappa"],
                     "vote_accuracy": humans["vote_accuracy"], "n": report["counts"]["voted_stimuli"]})
    for model, section in report["models"].items():
        rows.append({"rater": model, "accuracy": section["accuracy"], "kappa": section["cohen_kappa"],
                     "fleiss_kappa": None, "vote_accuracy": None, "n": section["n"]})
    return pd.DataFrame(rows, columns=HEADLINE_COLUMNS)


def headline_display(table: pd.DataFrame) -> pd.DataFrame:
    """The headline table as the page shows it: every share in percent with one decimal, kappas
    with three, and 'n/a' where a measure does not apply (a model has no Fleiss' kappa)."""
    def pct(x):
        return "n/a" if x is None or pd.isna(x) else f"{100 * float(x):.1f}%"

    def num(x):
        return "n/a" if x is None or pd.isna(x) else f"{float(x):.3f}"

    return pd.DataFrame({
        "rater": table["rater"], "accuracy": table["accuracy"].map(pct),
        "Cohen's kappa": table["kappa"].map(num), "Fleiss' kappa": table["fleiss_kappa"].map(num),
        "single-vote accuracy": table["vote_accuracy"].map(pct),
        "n": table["n"].map(lambda n: f"{int(n):,}")})


MCNEMAR_COLUMNS = ["comparison", "a", "b", "n", "both_right", "only_a_right", "only_b_right",
                   "both_wrong", "statistic", "p_value", "test"]


def mcnemar_table(report: dict) -> pd.DataFrame:
    """McNemar's test of every comparison of a `study_report` (the paper's): each model against the
    human majority, each fine-tuned variant against its parent. One row each: comparison, a, b, n
    (stimuli both judged), the 2x2 counts (both right, only a right, only b right, both wrong),
    statistic, p_value (None where undefined) and test (exact binomial when fewer than 25
    discordant pairs, else chi-square with continuity correction)."""
    rows = []

    def add(a, b, result, p):
        (both, only_a), (only_b, neither) = result["table"]
        rows.append({"comparison": f"{a} vs {b}", "a": a, "b": b, "n": result["n"], "both_right": both,
                     "only_a_right": only_a, "only_b_right": only_b, "both_wrong": neither,
                     "statistic": result["statistic"], "p_value": p,
                     "test": "exact binomial" if result["exact"] else "chi-square (corrected)"})

    for model, section in report["models"].items():
        if report["counts"]["votes"] and section.get("mcnemar_vs_humans"):
            add(model, "humans (majority)", section["mcnemar_vs_humans"], section["mcnemar_vs_humans_p"])
    for model, section in report["models"].items():
        if section.get("mcnemar_vs_parent"):
            add(model, section["parent_id"], section["mcnemar_vs_parent"], section["mcnemar_vs_parent_p"])
    return pd.DataFrame(rows, columns=MCNEMAR_COLUMNS)


def study_facts(store) -> dict:
    """The few counts the report adds to its own (cheap: no scan of votes or predictions)."""
    with store.read() as con:
        row = con.execute(
            "SELECT (SELECT count(*) FROM sources), (SELECT count(DISTINCT playlist_id) FROM playlists),"
            " (SELECT value FROM study_meta WHERE key = 'study_kind')").fetchall()[0]
    return {"sources": int(row[0]), "playlists": int(row[1]), "study_kind": row[2]}


def crowd_count_matrix(store, crowd: str = "ferplus") -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """(sources: source_id, label; counts (n, K); categories) of an aggregated crowd.

    The seven emotions come first in canonical order, then the crowd's other categories
    (FERPlus: contempt, unknown, NF) sorted by name.
    """
    with store.read() as con:
        long = con.execute(
            "SELECT c.source_id, c.category, c.n, s.original_label AS label FROM crowd_counts c"
            " JOIN sources s USING (source_id) WHERE c.crowd = ? ORDER BY c.source_id", [crowd]).df()
    cats = [e for e in EMOTIONS]
    cats += sorted(set(long["category"]) - set(EMOTIONS))
    sources = long.drop_duplicates("source_id")[["source_id", "label"]].reset_index(drop=True)
    row = pd.Index(sources["source_id"]).get_indexer(long["source_id"])
    col = pd.Index(cats).get_indexer(long["category"])
    counts = np.zeros((len(sources), len(cats)), np.int64)
    np.add.at(counts, (row, col), long["n"].to_numpy(np.int64))
    return sources, counts, cats


def crowd_agreement_per_source(store, crowd: str = "ferplus") -> pd.DataFrame:
    """Per source of an aggregated crowd: source_id, label, n_votes, p_i (over all its categories),
    majority (over the seven emotions; None without an emotion vote), majority_share, tied."""
    sources, counts, _ = crowd_count_matrix(store, crowd)
    maj, tied = majority_from_counts(counts[:, :7])
    n = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(maj >= 0, counts[np.arange(len(n)), np.maximum(maj, 0)] / n, np.nan)
    return sources.assign(n_votes=n, p_i=pairwise_agreement(counts),
                          majority=emotion_names(maj).tolist(),
                          majority_share=share, tied=tied)


def crowd_summary(store, crowd: str = "ferplus") -> dict | None:
    """Agreement of an aggregated crowd (all its categories) and its majority against the labels.

    The majority is taken over the seven emotions only (tie rule of humans.py); accuracy counts
    sources with a label and at least one emotion vote. None when the crowd has no counts.
    """
    sources, counts, cats = crowd_count_matrix(store, crowd)
    if not len(sources):
        return None
    agree = agreement_summary(counts)
    maj, tied = majority_from_counts(counts[:, :7])
    label = sources["label"].map(EMOTION_INDEX).fillna(-1).to_numpy(np.int64)
    judged = (maj >= 0) & (label >= 0)
    acc = float((maj[judged] == label[judged]).mean()) if judged.any() else float("nan")
    return {"crowd": crowd, "sources": len(sources), "votes": int(counts.sum()), "categories": cats,
            **agree.as_dict(), "tied_sources": int(tied.sum()),
            "majority_vs_label": {"accuracy": acc, "n": int(judged.sum()),
                                  "contradicted": int((maj[judged] != label[judged]).sum())}}
