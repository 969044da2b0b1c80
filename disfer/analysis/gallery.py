"""The stimulus gallery: every stimulus with the crowd's majority, its playlist and its audit status;
the gallery's filters; and one source's versions with the crowd's votes and each model's answer."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from disfer.analysis.humans import majority_vote
from disfer.analysis.trials import Study, load_study
from disfer.data.distortions import DISTORTION_ORDER
from disfer.data.stimuli import playlist_membership
from disfer.emotions import EMOTIONS
from disfer.store import Store

AGREES, CONTRADICTS, NO_VOTES = AUDIT_STATUSES = ("agrees with label", "contradicts label", "no votes")


def stimulus_gallery(store: Store, study: Study | None = None) -> pd.DataFrame:
    """One row per stimulus: the columns of `majority_vote` (stimulus_id, source_id, distortion,
    level, label, n_votes, majority, majority_share, label_share, tied, correct), then playlist_id
    (NaN where the stimulus is in no playlist) and audit (one of AUDIT_STATUSES: the majority agrees
    with the label, contradicts it, or there is no majority to judge).

    study: the store's Study (original labels) when the caller holds it already; loaded otherwise.
    """
    table = majority_vote(study if study is not None else load_study(store))
    table = table.merge(playlist_membership(store), on="stimulus_id", how="left")
    table["audit"] = table["correct"].map({True: AGREES, False: CONTRADICTS}).fillna(NO_VOTES)
    return table


def gallery_choices(table: pd.DataFrame) -> dict[str, list]:
    """The values a gallery's filters can offer, those present only: label (EMOTIONS order),
    distortion (DISTORTION_ORDER), level and playlist (ascending ints)."""
    present = {c: set(table[c].dropna()) for c in ("label", "distortion")}
    return {"label": [e for e in EMOTIONS if e in present["label"]],
            "distortion": [d for d in DISTORTION_ORDER if d in present["distortion"]],
            "level": sorted({int(v) for v in table["level"].dropna()}),
            "playlist": sorted({int(p) for p in table["playlist_id"].dropna()})}


def filter_gallery(table: pd.DataFrame, labels: Collection[str] = (), distortions: Collection[str] = (),
                   levels: Collection[int] = (), playlists: Collection[int] = (),
                   share: tuple[float, float] = (0.0, 1.0), audit: Collection[str] = ()) -> pd.DataFrame:
    """The rows of a `stimulus_gallery` table that pass every filter; an empty filter passes all.

    share: (low, high) bounds on majority_share, inclusive; stimuli without votes always pass.
    """
    keep = pd.Series(True, index=table.index)
    for column, wanted in (("label", labels), ("distortion", distortions), ("level", levels),
                           ("playlist_id", playlists), ("audit", audit)):
        if len(wanted):
            keep &= table[column].isin(list(wanted))
    if tuple(share) != (0.0, 1.0):
        s = table["majority_share"]
        keep &= s.isna() | s.between(*share)
    return table[keep]


def source_versions(study: Study, source_id: int) -> pd.DataFrame:
    """One row per version of a source, in the study's order: stimulus_id, distortion, level,
    label, votes (the crowd's votes, "emotion n" for each emotion voted, in EMOTIONS order, comma
    separated; empty without votes), then one column per model with its answer (missing where it
    has none)."""
    rows = np.flatnonzero(study.stimuli["source_id"].to_numpy() == int(source_id))
    out = study.stimuli.iloc[rows][["stimulus_id", "distortion", "level", "label"]].reset_index(drop=True)
    out["votes"] = [", ".join(f"{e} {n}" for e, n in zip(EMOTIONS, counts, strict=True) if n)
                    for counts in study.counts[rows]]
    for m, model in enumerate(study.models):
        out[model] = [EMOTIONS[p] if p >= 0 else None for p in study.model_pred[m, rows]]
    return out


def study_sources(table: pd.DataFrame) -> pd.DataFrame:
    """The sources a `stimulus_gallery` table holds (the study's faces, not every face ingested):
    source_id (int) and label, ascending by source_id."""
    out = table[["source_id", "label"]].drop_duplicates("source_id").sort_values("source_id")
    return out.astype({"source_id": int}).reset_index(drop=True)


def source_conditions(table: pd.DataFrame, source_id: int) -> dict[str, list[int]]:
    """The versions of one source in a `stimulus_gallery` table: distortion -> its levels
    (ascending), distortions in DISTORTION_ORDER, then any unknown ones by name."""
    rows = table[table["source_id"] == int(source_id)]
    levels: dict[str, list[int]] = {}
    for distortion, group in rows.groupby("distortion", sort=False):
        levels[str(distortion)] = sorted(int(v) for v in group["level"])
    rank = {d: i for i, d in enumerate(DISTORTION_ORDER)}
    return dict(sorted(levels.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def label_and_majority(table: pd.DataFrame, stimulus_id: str) -> str:
    """One line for a stimulus of a `stimulus_gallery` table: its dataset label and the crowd's
    majority with the votes behind it, e.g. "Dataset label: anger. Crowd majority: surprise (5 of 6
    votes).", "... Crowd majority: none, a tie (2 of 6 votes each)." or "... no votes yet."."""
    row = table.loc[table["stimulus_id"] == stimulus_id]
    if row.empty:
        raise KeyError(f"stimulus {stimulus_id!r} is not in the study")
    row = row.iloc[0]
    label = row["label"] if isinstance(row["label"], str) else "none"
    n = int(row["n_votes"])
    if n == 0 or not isinstance(row["majority"], str):
        crowd = "no votes yet"
    else:
        top = int(round(float(row["majority_share"]) * n))
        crowd = (f"none, a tie ({top} of {n} votes each)" if bool(row["tied"])
                 else f"{row['majority']} ({top} of {n} vote{'s' if n != 1 else ''})")
    return f"Dataset label: {label}. Crowd majority: {crowd}."
