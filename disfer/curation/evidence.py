"""What a curator looks at for one source: its versions with the crowd's votes, every model's
answers, and the crowd's vote distribution as a soft label."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from disfer.emotions import EMOTIONS
from disfer.store import Store


def version_name(distortion: str, level: int) -> str:
    """A version's name for a curator: 'original', or the distortion in words and its level
    ('gaussian blur 2')."""
    return "original" if distortion == "original" else f"{distortion.replace('_', ' ')} {int(level)}"


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

    @property
    def version_names(self) -> list[str]:
        """`version_name` of each version, in the order of `versions`."""
        return [version_name(d, lvl) for d, lvl in zip(self.versions["distortion"], self.versions["level"],
                                                        strict=True)]

    def vote_table(self) -> pd.DataFrame:
        """version, n_votes and one vote-count column per emotion: one row per version."""
        table = self.versions[["n_votes", *EMOTIONS]].copy()
        table.insert(0, "version", self.version_names)
        return table.reset_index(drop=True)

    def version_summary(self, consensus: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per version: stimulus_id, version, pixels, top_votes (the three most voted
        emotions, "emotion n" comma separated, ties in EMOTIONS order; 'no votes' without any),
        majority and dawid_skene (from `consensus`, a `dawid_skene_labels` frame; None where it has
        no row for the version, or without `consensus`)."""
        counts = self.versions[list(EMOTIONS)].to_numpy()
        top = []
        for row in counts:
            order = sorted((i for i in range(len(EMOTIONS)) if row[i]), key=lambda i: -row[i])[:3]
            top.append(", ".join(f"{EMOTIONS[i]} {int(row[i])}" for i in order) or "no votes")
        out = pd.DataFrame({"stimulus_id": self.versions["stimulus_id"].to_numpy(),
                            "version": self.version_names, "pixels": self.versions["pixels"].to_numpy(),
                            "top_votes": top})
        if consensus is None:
            consensus = pd.DataFrame(columns=["stimulus_id", "majority", "dawid_skene"])
        known = consensus.drop_duplicates("stimulus_id").set_index("stimulus_id")
        for column in ("majority", "dawid_skene"):
            values = out["stimulus_id"].map(known[column]).astype(object)
            out[column] = values.where(values.notna(), None)
        return out

    def prediction_table(self) -> pd.DataFrame:
        """Every model's answer on every version: indexed by version (in the order of `versions`),
        one column per model (model_id order), each cell "emotion (confidence as a percentage)",
        NaN where the model has no prediction. No columns without predictions."""
        names = dict(zip(self.versions["stimulus_id"], self.version_names, strict=True))
        preds = self.predictions
        answers = preds.assign(
            version=preds["stimulus_id"].map(names),
            answer=[f"{p} ({c:.0%})" for p, c in zip(preds["predicted"], preds["confidence"], strict=True)])
        table = answers.pivot(index="version", columns="model_id", values="answer")
        return table.reindex(list(names.values()))


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
