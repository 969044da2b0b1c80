"""Label audit: where the human majority contradicts the dataset's label."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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
    # Contradiction strength: how far the majority's share exceeds the label's, averaged over the
    # source's versions; the audit lists the strongest contradictions first.
    ok = judged.assign(_ok=judged["correct"].astype(bool).astype(np.int64),
                       _margin=judged["majority_share"] - judged["label_share"])
    per_source = ok.groupby("source_id", sort=True).agg(
        versions=("stimulus_id", "size"), right=("_ok", "sum"), label=("label", "first"),
        strength=("_margin", "mean"), label_share=("label_share", "mean"))
    bad = (per_source[per_source["right"] == 0].reset_index()
           .sort_values(["strength", "source_id"], ascending=[False, True], kind="stable")
           .reset_index(drop=True))
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
