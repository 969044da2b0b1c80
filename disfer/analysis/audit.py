"""Label audit: where the human majority contradicts the dataset's label."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from disfer.analysis.agreement import agreement_per_stimulus
from disfer.analysis.humans import majority_vote
from disfer.analysis.trials import as_study


@dataclass(frozen=True)
class LabelAudit:
    """contradicted: stimuli whose majority is not a true label (stimulus_id, source_id, distortion,
    level, label, majority, majority_share, label_share, n_votes, tied), most confident first.
    all_versions_misclassified: sources every voted version of which the majority gets wrong
    (source_id, label, versions, majorities: the majority labels seen, most frequent first)."""

    contradicted: pd.DataFrame
    all_versions_misclassified: pd.DataFrame

    @property
    def source_ids(self) -> list[int]:
        return [int(s) for s in self.all_versions_misclassified["source_id"]]


def label_audit(data) -> LabelAudit:
    """Stimuli contradicted by the majority, and sources with all versions misclassified."""
    study = as_study(data)
    mv = majority_vote(study)
    judged = mv[mv["correct"].notna()]
    wrong = judged[~judged["correct"].astype(bool)]
    cols = ["stimulus_id", "source_id", "distortion", "level", "label", "majority", "majority_share",
            "label_share", "n_votes", "tied"]
    contradicted = wrong[cols].sort_values(["majority_share", "stimulus_id"], ascending=[False, True])
    # The sources wrong everywhere, in the review order (strongest contradiction first).
    ranking = review_ranking(study)
    bad = ranking[ranking["all_versions_wrong"].astype(bool)].reset_index(drop=True)
    label_share = judged.groupby("source_id")["label_share"].mean()
    bad["label_share"] = bad["source_id"].map(label_share)
    # Only the (few) sources wrong everywhere need their list of majority labels.
    wrong_there = wrong[wrong["source_id"].isin(bad["source_id"])]
    freq = (wrong_there.groupby(["source_id", "majority"]).size().rename("n").reset_index()
            .sort_values(["source_id", "n", "majority"], ascending=[True, False, True]))
    src = freq["source_id"].to_numpy()
    starts = np.r_[0, np.flatnonzero(np.diff(src)) + 1] if len(src) else np.zeros(0, np.int64)
    chunks = np.split(freq["majority"].to_numpy(dtype=object), starts[1:])
    majorities = pd.Series([list(c) for c in chunks] if len(src) else [], index=src[starts], dtype=object)
    bad["majorities"] = bad["source_id"].map(majorities)
    return LabelAudit(contradicted.reset_index(drop=True),
                      bad[["source_id", "label", "versions", "majorities", "strength", "label_share"]])


REVIEW_COLUMNS = ["source_id", "label", "versions", "all_versions_wrong", "n_contradicted", "strength",
                  "contradiction", "agreement", "review_rank"]


def review_ranking(data) -> pd.DataFrame:
    """The one order in which faces are reviewed: the label audit's page, the curation queue and
    `disfer curate queue` all show sources in this order.

    Per source with votes: versions (voted versions), all_versions_wrong (the majority misses the
    label on every one), n_contradicted (versions whose majority is not a true label), strength
    (mean of majority share minus label share over the voted versions: how strongly the crowd
    contradicts the label), contradiction (mean majority share over the contradicted versions),
    agreement (mean P_i over the voted versions) and review_rank (1 = review first). Sources are
    ranked by all_versions_wrong, then n_contradicted, then strength (all descending), then
    agreement (ascending: a split crowd before a unanimous one), then source_id. Empty without votes.
    """
    study = as_study(data)
    mv = majority_vote(study)
    judged = mv[mv["correct"].notna()]
    if judged.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in REVIEW_COLUMNS})
    wrong = ~judged["correct"].astype(bool)
    per = judged.assign(_wrong=wrong.astype(np.int64), _margin=judged["majority_share"] - judged["label_share"],
                        _share_if_wrong=judged["majority_share"].where(wrong)).groupby("source_id", sort=True).agg(
        label=("label", "first"), versions=("stimulus_id", "size"), n_contradicted=("_wrong", "sum"),
        strength=("_margin", "mean"), contradiction=("_share_if_wrong", "mean"))
    per["contradiction"] = per["contradiction"].fillna(0.0)
    per["all_versions_wrong"] = per["n_contradicted"] == per["versions"]
    agree = agreement_per_stimulus(study)
    agree = agree[agree["n_votes"] > 0].groupby("source_id")["p_i"].mean()
    per["agreement"] = agree.reindex(per.index)
    per = per.reset_index()
    per["source_id"] = per["source_id"].astype(int)
    per = per.sort_values(["all_versions_wrong", "n_contradicted", "strength", "agreement", "source_id"],
                          ascending=[False, False, False, True, True], kind="stable").reset_index(drop=True)
    per["review_rank"] = np.arange(1, len(per) + 1)
    return per[REVIEW_COLUMNS]
