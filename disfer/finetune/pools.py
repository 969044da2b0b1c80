"""The images each protocol trains on, read from the store and split source-disjointly.

- paper: the study's stimuli of one distortion type (every source's original and its levels),
  labelled with the source's original label.
- curated: every stimulus of the sources with a settled curated ground truth (not excluded, not
  disputed), labelled with the curated labels and each stimulus' human vote distribution (the
  curated weights, else equal shares of the curated labels, where a stimulus has no votes).

With augmentation the distorted half of the batches is not read from the store: each draw renders
a fresh distortion (a random registry distortion and level, new noise) of a training original.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from disfer.emotions import EMOTION_INDEX, EMOTIONS
from disfer.errors import ConfigError
from disfer.finetune.sampling import DISTORTED, ORIGINAL, Split, split_sources
from disfer.finetune.targets import ItemLabels, distribution_from, single_label
from disfer.finetune.train import AUGMENT, TrainData
from disfer.images import stack_blobs
from disfer.store import Store

# Curated statuses that are not (yet) a label to train on.
UNSETTLED = ("excluded", "disputed")


@dataclass
class Pool:
    train: TrainData
    val: TrainData
    split: Split
    summary: dict


def _stimuli(store: Store, source_ids: list[int] | None, distortions: list[str] | None) -> pd.DataFrame:
    sql = ("SELECT st.stimulus_id, st.source_id, st.distortion, st.level, st.pixels, s.original_label "
           "FROM stimuli st JOIN sources s USING (source_id) WHERE TRUE")
    params: list = []
    if distortions is not None:
        sql += " AND st.distortion IN (SELECT unnest(?::TEXT[]))"
        params.append(distortions)
    if source_ids is not None:
        sql += " AND st.source_id IN (SELECT unnest(?::INTEGER[]))"
        params.append(source_ids)
    with store.read() as con:
        return con.execute(sql + " ORDER BY st.source_id, st.distortion, st.level", params).df()


def _vote_counts(store: Store, stimulus_ids: np.ndarray) -> np.ndarray:
    """(N, 7) counts of the study crowd's votes on each stimulus, EMOTIONS order."""
    with store.read() as con:
        df = con.execute(
            "SELECT v.stimulus_id, v.emotion, count(*) AS n FROM votes v "
            "JOIN participants p USING (participant_id) WHERE p.crowd = 'study' "
            "GROUP BY 1, 2").df()
    counts = np.zeros((len(stimulus_ids), len(EMOTIONS)))
    if df.empty:
        return counts
    row = {s: i for i, s in enumerate(stimulus_ids)}
    for sid, emotion, n in df.itertuples(index=False):
        if sid in row and emotion in EMOTION_INDEX:
            counts[row[sid], EMOTION_INDEX[emotion]] = n
    return counts


def _side(df: pd.DataFrame, labels: ItemLabels, mask: np.ndarray, augment: bool) -> TrainData:
    sub = df[mask]
    idx = np.flatnonzero(mask)
    faces = stack_blobs(sub["pixels"].tolist()).copy()
    kinds = np.where(sub["distortion"].to_numpy() == "original", ORIGINAL, DISTORTED)
    dist = sub["distortion"].to_numpy().astype(object)
    lab = labels.take(idx)
    if augment:
        # The distorted half: the originals again, to be distorted by the loop on each draw.
        orig = np.flatnonzero(kinds == ORIGINAL)
        faces = np.concatenate([faces[orig], faces[orig]])
        kinds = np.array([ORIGINAL] * len(orig) + [DISTORTED] * len(orig))
        dist = np.array(["original"] * len(orig) + [AUGMENT] * len(orig), dtype=object)
        lab = lab.take(np.concatenate([orig, orig]))
        sub = pd.concat([sub.iloc[orig], sub.iloc[orig]])
    return TrainData(faces, kinds, dist, lab, sub["source_id"].to_numpy(), sub["stimulus_id"].to_numpy())


def _split_pool(df: pd.DataFrame, labels: ItemLabels, source_labels: pd.DataFrame, seed: int,
                val_fraction: float, required: tuple[str, ...], augment: bool) -> tuple[TrainData, TrainData, Split]:
    split = split_sources(source_labels, seed=seed, val_fraction=val_fraction, required=required)
    in_val = df["source_id"].isin(split.val_sources).to_numpy()
    # Validation always scores the stored stimuli: augmentation changes training only.
    return _side(df, labels, ~in_val, augment), _side(df, labels, in_val, False), split


def paper_pool(store: Store, distortion: str, seed: int = 0, val_fraction: float = 0.1,
               augment: bool = False) -> Pool:
    df = _stimuli(store, None, ["original", distortion])
    df = df[df["original_label"].notna()].reset_index(drop=True)
    if df.empty:
        raise ConfigError(f"{store.path}: no labelled stimuli; build a study first (`disfer build` or `disfer demo`)")
    if not (df["distortion"] == distortion).any():
        raise ConfigError(f"{store.path}: the study has no {distortion} stimuli to fine-tune on")
    labels = single_label(df["original_label"].map(EMOTION_INDEX).to_numpy())
    sources = df[["source_id", "original_label"]].rename(columns={"original_label": "label"})
    train, val, split = _split_pool(df, labels, sources, seed, val_fraction, EMOTIONS, augment)
    return Pool(train, val, split, _summary(train, val, split, val_fraction))


def curated_pool(store: Store, ground_truth: pd.DataFrame, distortion: str | None = None, seed: int = 0,
                 val_fraction: float = 0.1, augment: bool = False) -> Pool:
    gt = ground_truth[~ground_truth["status"].isin(UNSETTLED)]
    gt = gt[gt["labels"].map(len) > 0]
    if gt.empty:
        raise ConfigError(f"{store.path}: no curated labels yet (or only excluded/disputed ones); "
                          "curate some faces first (`disfer curate ...` or the Curation page)")
    distortions = None if distortion is None else ["original", distortion]
    df = _stimuli(store, gt["source_id"].astype(int).tolist(), distortions).reset_index(drop=True)
    if df.empty:
        raise ConfigError(f"{store.path}: the curated faces have no stimuli; build the study first")
    by_source = gt.set_index("source_id")
    rows = by_source.loc[df["source_id"]]
    primary = rows["primary_label"].map(EMOTION_INDEX).to_numpy()
    mask = np.zeros((len(df), len(EMOTIONS)), dtype=bool)
    weights = np.zeros((len(df), len(EMOTIONS)))
    for i, (labs, w) in enumerate(zip(rows["labels"], rows["weights"], strict=True)):
        for j, lab in enumerate(labs):
            mask[i, EMOTION_INDEX[lab]] = True
            weights[i, EMOTION_INDEX[lab]] = w[j] if w is not None else 1.0
    counts = _vote_counts(store, df["stimulus_id"].to_numpy())
    labels = ItemLabels(primary, mask, distribution_from(counts, mask, weights))
    sources = pd.DataFrame({"source_id": gt["source_id"].astype(int), "label": gt["primary_label"]})
    present = tuple(e for e in EMOTIONS if (sources["label"] == e).any())
    train, val, split = _split_pool(df, labels, sources, seed, val_fraction, present, augment)
    summary = _summary(train, val, split, val_fraction)
    summary["stimuli_with_votes"] = int((counts.sum(axis=1) > 0).sum())
    summary["curated_sources"] = len(sources)
    return Pool(train, val, split, summary)


def _summary(train: TrainData, val: TrainData, split: Split, val_fraction: float) -> dict:
    return {
        "train_images": len(train), "val_images": len(val),
        "train_sources": split.train_sources, "val_sources": split.val_sources,
        "val_sources_per_emotion": split.val_per_class,
        "split": f"source-disjoint: per emotion, round({val_fraction:.0%}) of the faces (at least 1), "
                 "drawn with the seed, are held out with all their versions",
    }
