"""The whole study as one JSON-ready dict: `disfer report --json` and the dashboard read the same.

Human accuracy is the accuracy of the majority vote (tie rule in humans.py); `vote_accuracy` is the
share of individual votes that are right. Model measures against humans are computed on the stimuli
both rated. NaN (undefined measures) becomes null.
"""

from __future__ import annotations

import math

import numpy as np

from disfer.analysis.agreement import agreement_summary
from disfer.analysis.audit import label_audit
from disfer.analysis.confusion import (
    confusion_by_condition,
    offdiag_pearson,
    precision_recall_from_counts,
    row_normalize,
)
from disfer.analysis.consistency import error_consistency, models_vs_participants
from disfer.analysis.curves import robustness_curve
from disfer.analysis.heldout import heldout_comparison, variant_training
from disfer.analysis.humans import majority_arrays, participant_accuracy
from disfer.analysis.models import cohen_kappa, mcnemar_test
from disfer.analysis.overview import crowd_summary, study_facts
from disfer.analysis.trials import HUMANS, load_study
from disfer.data.rating import rating_failures
from disfer.emotions import EMOTIONS

TIE_RULE = "first emotion in canonical order among those with the most votes"


def _clean(value):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _per_emotion(counts: np.ndarray) -> dict:
    """Precision and recall per emotion from a confusion count matrix (rows = label)."""
    precision, recall = precision_recall_from_counts(counts)
    return {e: {"precision": float(p), "recall": float(r)}
            for e, p, r in zip(EMOTIONS, precision, recall, strict=True)}


def _model_section(study, model, maj, maj_correct, human_cm, cond, cond_rows, vs_people):
    defined, correct = study.model_correct(model)
    pred = study.model_pred[study.models.index(model)].astype(np.int64)
    ref = np.where(correct, pred, study.label_index)
    both = defined & (maj >= 0)
    mc = mcnemar_test(correct[both], maj_correct[both])
    cm = confusion_by_condition(study, model)
    per_condition = []
    for c, row in cond.iterrows():
        rows = cond_rows[c]
        sel = rows[defined[rows]]
        if not len(sel):
            continue
        in_both = rows[both[rows]]
        per_condition.append({
            "distortion": row["distortion"], "level": int(row["level"]), "n": len(sel),
            "accuracy": float(correct[sel].mean()), "cohen_kappa": cohen_kappa(ref[sel], pred[sel]),
            "offdiag_pearson_r_vs_humans": offdiag_pearson(row_normalize(cm[c]),
                                                           row_normalize(human_cm[c])),
            "error_consistency_vs_humans": error_consistency(correct[in_both],
                                                             maj_correct[in_both]).kappa,
        })
    ec = error_consistency(correct[both], maj_correct[both])
    out = {
        "n": int(defined.sum()),
        "accuracy": float(correct[defined].mean()) if defined.any() else float("nan"),
        "cohen_kappa": cohen_kappa(ref[defined], pred[defined]),
        "mcnemar_vs_humans_p": mc.pvalue,
        "mcnemar_vs_humans": {"table": mc.table, "statistic": mc.statistic, "exact": mc.exact, "n": mc.n},
        "offdiag_pearson_r_vs_humans": offdiag_pearson(row_normalize(cm[-1]), row_normalize(human_cm[-1])),
        "error_consistency_vs_humans": ec.kappa,
        "error_consistency_vs_humans_detail": {"observed": ec.observed, "expected": ec.expected, "n": ec.n},
        "error_consistency_vs_participants_mean": (float(vs_people["kappa"].mean())
                                                   if len(vs_people) else float("nan")),
        "confusion": row_normalize(cm[-1]).tolist(),
        "per_emotion": _per_emotion(cm[-1]),
        "per_condition": per_condition,
        "parent_id": study.model_parent.get(model),
    }
    parent = study.model_parent.get(model)
    if parent in study.models:
        p_defined, p_correct = study.model_correct(parent)
        paired = defined & p_defined
        pm = mcnemar_test(correct[paired], p_correct[paired])
        out["mcnemar_vs_parent_p"] = pm.pvalue
        out["mcnemar_vs_parent"] = {"table": pm.table, "statistic": pm.statistic, "exact": pm.exact,
                                    "n": pm.n}
    return out


def _audit_section(audit, judged: int) -> dict:
    """The label audit's counts; null where nothing was measured (no labelled stimulus has a
    majority yet), so a store without votes never reads as one whose labels are clean."""
    measured = judged > 0
    return {"measured": measured, "judged_stimuli": judged,
            "contradicted_stimuli": len(audit.contradicted) if measured else None,
            "all_versions_misclassified_sources": audit.source_ids if measured else None,
            "all_versions_misclassified_count": len(audit.source_ids) if measured else None}


def audit_sentence(audit: dict) -> str:
    """The label audit in one sentence, saying so when it has not been measured."""
    if not audit.get("measured", True) or audit["contradicted_stimuli"] is None:
        return ("Label audit: not measured yet (no crowd votes on a labelled stimulus); "
                "import votes to see where the majority contradicts the label.")
    return (f"Label audit: {audit['contradicted_stimuli']:,} stimuli whose majority contradicts the label; "
            f"{audit['all_versions_misclassified_count']:,} sources misclassified in every version "
            f"(of {audit['judged_stimuli']:,} labelled stimuli with a majority).")


def study_report(store, bootstrap: int = 1000, seed: int = 0, label_kind: str = "original",
                 consensus: bool = True, study=None, include_failed: bool | None = None) -> dict:
    """Every figure of the study (see the JSON contract in the README / issue 5).

    bootstrap: replicates for the condition CIs (0: no CIs); seed: their seed. consensus: add the
    Dawid-Skene comparison (the slowest part at FERPlus scale). study: a Study already loaded from
    this store (skips loading). include_failed: count the votes of participants who failed the
    rating page's attention checks (None: the study's setting, which leaves them out).
    """
    study = study if study is not None else load_study(store, label_kind=label_kind, include_failed=include_failed)
    counts = study.counts
    maj, tied, maj_correct = majority_arrays(study)
    judged = (maj >= 0) & study.has_label
    agree = agreement_summary(counts)
    vdef, vcorrect = study.vote_correct()
    pacc = participant_accuracy(study)
    cond = study.conditions
    # The stimuli of each condition, ascending: a model's figures per condition gather these few
    # rather than masking every stimulus once per condition and model.
    cond_rows = np.split(np.argsort(study.condition_index, kind="stable"),
                         np.cumsum(np.bincount(study.condition_index, minlength=len(cond)))[:-1])
    people = models_vs_participants(study) if study.models else {}
    human_cm = confusion_by_condition(study, HUMANS)
    curve = robustness_curve(study, bootstrap=bootstrap, seed=seed)
    audit = label_audit(study)
    # As for models: with multi-label (curated) truth, a hit counts against the label it matched.
    human_ref = np.where(maj_correct, maj, study.label_index)

    report = {
        "study_kind": None,
        "label_kind": study.label_kind,
        "counts": {"sources": len(study.source_codes[0]), "stimuli": study.n_stimuli,
                   "participants": int(np.count_nonzero(np.bincount(study.vote_rater))), "votes": len(study.vote_stim),
                   "models": len(study.models), "labelled_stimuli": int(study.has_label.sum()),
                   "voted_stimuli": int((maj >= 0).sum())},
        "humans": {
            "accuracy": float(maj_correct[judged].mean()) if judged.any() else float("nan"),
            "cohen_kappa": cohen_kappa(human_ref[judged], maj[judged]) if judged.any() else float("nan"),
            "vote_accuracy": float(vcorrect[vdef].mean()) if vdef.any() else float("nan"),
            "fleiss_kappa": agree.fleiss_kappa, "mean_p_i": agree.mean_p_i,
            "tied_stimuli": int(tied.sum()), "tie_rule": TIE_RULE, "pi_bins": agree.bins,
            "participant_accuracy": {**pacc.summary(), "histogram": {
                "edges": np.linspace(0, 1, 11).tolist(),
                "counts": np.histogram(pacc.table["accuracy"], bins=10, range=(0, 1))[0].tolist()}},
            "confusion": row_normalize(human_cm[-1]).tolist(),
            "per_emotion": _per_emotion(human_cm[-1]),
            "votes_per_stimulus": {"min": int(counts.sum(1)[maj >= 0].min()) if (maj >= 0).any() else 0,
                                   "max": int(counts.sum(1).max()) if len(counts) else 0},
        },
        "conditions": curve.to_dict(orient="records"),
        "models": {m: _model_section(study, m, maj, maj_correct, human_cm, cond, cond_rows,
                                        people[m]) for m in study.models},
        "audit": _audit_section(audit, int(judged.sum())),
        "emotions": list(EMOTIONS),
    }
    _add_heldout(report, study, variant_training(store))
    info = study_facts(store)
    report["study_kind"] = info["study_kind"]
    report["counts"]["playlists"] = info["playlists"]
    report["counts"]["sources_in_store"] = info["sources"]
    failed = rating_failures(store)
    left_out = set(failed) - set(study.participants.tolist())
    report["counts"]["participants_failed_checks"] = len(failed)
    report["counts"]["participants_left_out"] = len(left_out)
    ferplus = crowd_summary(store, "ferplus")
    if ferplus is not None:
        report["ferplus"] = ferplus
    if consensus and len(study.vote_stim):
        from disfer.analysis.consensus import dawid_skene_labels

        ds = dawid_skene_labels(study)
        report["consensus"] = {
            "method": "dawid_skene",
            "disagreements_with_majority": int(ds["disagree"].sum()),
            "stimuli": ds.loc[ds["disagree"], "stimulus_id"].head(200).tolist(),
        }
    return _clean(report)


def _add_heldout(report: dict, study, training: dict) -> None:
    """Per fine-tuned model: what it trained on (`training`) and variant vs parent on held-out
    stimuli only (`heldout`; see disfer/analysis/heldout.py)."""
    for model, section in report["models"].items():
        if model not in training:
            continue
        t = training[model]
        section["training"] = {k: t[k] for k in ("protocol", "train_sources", "val_sources",
                                                 "best_val_accuracy", "parent_val_accuracy",
                                                 "worse_than_parent_on_validation")}
        section["heldout"] = heldout_comparison(study, model, t["parent"], t["train_sources"],
                                                t["val_sources"]).as_report()


def report_text(report: dict) -> str:
    """A readable summary of a study_report dict (the non-JSON `disfer report`)."""
    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"

    def num(x, fmt=".3f"):
        return "n/a" if x is None else format(x, fmt)

    c, h = report["counts"], report["humans"]
    lines = [f"Study ({report.get('study_kind') or 'unknown kind'}, {report['label_kind']} labels): "
             f"{c['sources']} sources, {c['stimuli']} stimuli, {c['participants']} participants, "
             f"{c['votes']} votes, {c['models']} models",
             *([f"  {c['participants_left_out']} participant(s) who failed the attention checks left out "
                "(--include-failed counts them)"] if c.get("participants_left_out") else []),
             "",
             f"Humans (majority vote): accuracy {pct(h['accuracy'])}, single votes {pct(h['vote_accuracy'])}",
             f"  Fleiss' kappa {num(h['fleiss_kappa'])}, mean P_i {num(h['mean_p_i'])}, "
             f"P_i>0.9: {h['pi_bins']['gt_0_9']}, >0.5: {h['pi_bins']['gt_0_5']}, "
             f"<0.3: {h['pi_bins']['lt_0_3']}; tied stimuli {h['tied_stimuli']}",
             f"  participants: mean {pct(h['participant_accuracy']['mean'])}, "
             f"min {pct(h['participant_accuracy']['min'])}, max {pct(h['participant_accuracy']['max'])}",
             ""]
    if report["models"]:
        lines.append(f"{'model':32} {'acc':>7} {'kappa':>6} {'McNemar p':>10} {'r offdiag':>9} {'err cons':>8}")
        for mid, m in report["models"].items():
            lines.append(f"{mid:32} {pct(m['accuracy']):>7} {num(m['cohen_kappa'], '.2f'):>6} "
                         f"{num(m['mcnemar_vs_humans_p'], '.2g'):>10} "
                         f"{num(m['offdiag_pearson_r_vs_humans'], '.2f'):>9} "
                         f"{num(m['error_consistency_vs_humans'], '.2f'):>8}")
        for mid, m in report["models"].items():
            if "mcnemar_vs_parent" in m:
                lines.append(f"  {mid} vs {m['parent_id']}: McNemar p = {num(m['mcnemar_vs_parent_p'], '.2g')}"
                             + (" (all stimuli, training images included)" if "heldout" in m else ""))
            if "heldout" in m:
                h, t = m["heldout"], m["training"]
                lines.append(f"    held-out stimuli: {h['n']}, accuracy {pct(h['accuracy'])} vs parent "
                             f"{pct(h['parent_accuracy'])}, McNemar p = {num(h['mcnemar_vs_parent_p'], '.2g')}"
                             if h["n"] else f"    {h['note']}")
                if t["worse_than_parent_on_validation"]:
                    lines.append(f"    worse than its parent on validation: {t['best_val_accuracy']:.3f} "
                                 f"vs {t['parent_val_accuracy']:.3f}")
        lines.append("")
    lines.append("Accuracy per condition (95% bootstrap CI over sources):")
    for row in report["conditions"]:
        lines.append(f"  {row['rater']:32} {row['distortion']:15} {row['level']}  {pct(row['accuracy']):>6} "
                     f"[{pct(row['ci_low'])}, {pct(row['ci_high'])}]  n={row['n']}")
    a = report["audit"]
    lines += ["", audit_sentence(a)
              + (f" Sources: {', '.join(map(str, a['all_versions_misclassified_sources'][:30]))}"
                 if a["all_versions_misclassified_sources"] else "")]
    if "consensus" in report:
        lines.append(f"Dawid-Skene consensus differs from the majority on "
                     f"{report['consensus']['disagreements_with_majority']} stimuli")
    if "ferplus" in report:
        f = report["ferplus"]
        lines.append(f"FERPlus crowd: {f['sources']} sources, Fleiss' kappa {num(f['fleiss_kappa'])}, "
                     f"majority agrees with the label on {pct(f['majority_vs_label']['accuracy'])}")
    return "\n".join(lines)
