"""What a curator looks at for one source: its versions with the crowd's votes, every model's
answers, and the crowd's vote distribution as a soft label."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from disfer.emotions import EMOTIONS
from disfer.store import Store


def soft_label_from_votes(counts: dict[str, int] | pd.Series) -> tuple[list[str], list[float]]:
    """Labels and weights (rounded to 3 decimals, summing to 1) from vote counts, largest first:
    the 'keep the vote distribution as a soft label' choice."""
    counts = {e: int(counts.get(e, 0)) for e in EMOTIONS}
    total = sum(counts.values())
    if total == 0:
        return [], []
    labels = sorted((e for e in EMOTIONS if counts[e] > 0), key=lambda e: (-counts[e], EMOTIONS.index(e)))
    weights = [round(counts[e] / total, 3) for e in labels]
    weights[0] = round(1.0 - sum(weights[1:]), 3)  # rounding must not break the sum-to-1 rule
    return labels, weights


@dataclass
class SourceEvidence:
    versions: pd.DataFrame
    """stimulus_id, distortion, level, pixels, n_votes and one vote-count column per emotion,
    original first, then by distortion and level."""
    predictions: pd.DataFrame
    """model_id, stimulus_id, predicted, confidence (the predicted emotion's probability)."""

    @property
    def pooled_votes(self) -> pd.Series:
        """Votes over all versions together, per emotion (EMOTIONS order)."""
        if self.versions.empty:
            return pd.Series(0, index=list(EMOTIONS), dtype=int)
        return self.versions[list(EMOTIONS)].sum().astype(int)


def source_evidence(store: Store, source_id: int) -> SourceEvidence:
    """A source's versions with their crowd votes, and every model's prediction on them."""
    with store.read() as con:
        versions = con.execute(
            "SELECT st.stimulus_id, st.distortion, st.level, st.pixels, "
            + ", ".join(f"count(v.emotion) FILTER (WHERE v.emotion = ?) AS {e}" for e in EMOTIONS)
            + " FROM stimuli st LEFT JOIN (SELECT v.* FROM votes v JOIN participants p USING (participant_id)"
            "  WHERE p.crowd = 'study') v USING (stimulus_id) WHERE st.source_id = ? "
            "GROUP BY st.stimulus_id, st.distortion, st.level, st.pixels "
            "ORDER BY st.distortion <> 'original', st.distortion, st.level",
            [*EMOTIONS, int(source_id)]).df()
        predictions = con.execute(
            "SELECT p.model_id, p.stimulus_id, p.predicted, "
            "greatest(p.anger, p.disgust, p.fear, p.happiness, p.neutral, p.sadness, p.surprise) AS confidence "
            "FROM predictions p JOIN stimuli st USING (stimulus_id) WHERE st.source_id = ? "
            "ORDER BY p.model_id, p.stimulus_id", [int(source_id)]).df()
    for e in EMOTIONS:
        versions[e] = versions[e].astype(int)
    versions.insert(3, "n_votes", versions[list(EMOTIONS)].sum(axis=1))
    versions["pixels"] = versions["pixels"].map(bytes)
    return SourceEvidence(versions.reset_index(drop=True), predictions)
