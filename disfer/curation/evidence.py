"""What a curator looks at for one source: its versions with the crowd's votes, every model's
answers, and the crowd's vote distribution as a soft label."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
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
    source_pixels: bytes | None = None
    """The source's own stored face (sources.pixels), for a source that is not (yet) in the study."""

    @property
    def face(self) -> bytes | None:
        """The face to show: the original version's pixels, else the source's own, else None."""
        original = self.versions[self.versions["distortion"] == "original"]
        if len(original) and original["pixels"].iloc[0]:
            return original["pixels"].iloc[0]
        return self.source_pixels

    @property
    def n_votes(self) -> int:
        """The crowd's votes on all versions together."""
        return int(self.versions["n_votes"].sum()) if len(self.versions) else 0

    def version_majorities(self) -> list[str | None]:
        """The crowd's majority on each version (order of `versions`): an emotion, 'tie' where two
        or more share the most votes, None without votes."""
        out: list[str | None] = []
        for row in self.versions[list(EMOTIONS)].to_numpy():
            if row.sum() == 0:
                out.append(None)
                continue
            top = np.flatnonzero(row == row.max())
            out.append(EMOTIONS[top[0]] if len(top) == 1 else "tie")
        return out

    def audit_reason(self, label: str | None) -> str:
        """Why the audit ranks this face where it does, in words: "majority neutral in 10 of 10
        versions; label happiness" (several majorities largest first, ties in EMOTIONS order)."""
        majorities = [m for m in self.version_majorities() if m is not None]
        labelled = f"label {label}" if label else "no label"
        if not majorities:
            return f"no crowd votes on this face yet; {labelled}"
        order = {e: i for i, e in enumerate((*EMOTIONS, "tie"))}
        counted = sorted(Counter(majorities).items(), key=lambda kv: (-kv[1], order[kv[0]]))
        parts = ", ".join(f"{'a tie' if m == 'tie' else m} in {k}" for m, k in counted)
        voted = len(majorities)
        of = f"of {voted} versions" if voted == len(self.versions) else \
            f"of {voted} voted versions (of {len(self.versions)})"
        return f"majority {parts} {of}; {labelled}"

    def model_answers(self) -> pd.DataFrame:
        """One row per model: model_id, original (its answer on the original version, None without
        one), confidence (of that answer), top (its most frequent answer over the versions, first
        in EMOTIONS order on a tie), top_count (versions answered so), n_versions (versions with a
        prediction)."""
        columns = ["model_id", "original", "confidence", "top", "top_count", "n_versions"]
        if self.predictions.empty:
            return pd.DataFrame(columns=columns)
        original_id = self.versions.loc[self.versions["distortion"] == "original", "stimulus_id"]
        original_id = original_id.iloc[0] if len(original_id) else None
        rows = []
        for model, preds in self.predictions.groupby("model_id", sort=True):
            counts = Counter(preds["predicted"])
            top = max(EMOTIONS, key=lambda e: (counts.get(e, 0), -EMOTIONS.index(e)))
            on_original = preds[preds["stimulus_id"] == original_id]
            rows.append([model, on_original["predicted"].iloc[0] if len(on_original) else None,
                         float(on_original["confidence"].iloc[0]) if len(on_original) else None,
                         top, int(counts.get(top, 0)), int(len(preds))])
        out = pd.DataFrame(rows, columns=columns)
        # pandas 3 reads a str column's None as NaN: keep None for "no answer on the original".
        out["original"] = pd.Series([r[1] for r in rows], dtype=object, index=out.index)
        return out

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
        own = con.execute("SELECT pixels FROM sources WHERE source_id = ?", [int(source_id)]).fetchone()
    for e in EMOTIONS:
        versions[e] = versions[e].astype(int)
    versions.insert(3, "n_votes", versions[list(EMOTIONS)].sum(axis=1))
    # A vote-only stimulus (imported votes, no picture) has no pixels: b"", drawn as a placeholder.
    versions["pixels"] = versions["pixels"].map(lambda b: bytes(b) if isinstance(b, bytes | bytearray | memoryview)
                                                else b"")
    return SourceEvidence(versions.reset_index(drop=True), predictions,
                          bytes(own[0]) if own is not None and own[0] is not None else None)
