"""The images each protocol trains on, read from the store and split source-disjointly.

- paper: the study's stimuli of one distortion type (every source's original and its levels),
  labelled with the source's original label.
- curated: the curated dataset: every stimulus of the study's faces, excluded faces left out,
  labelled with the curated labels where a curator decided and the original label elsewhere, and
  each stimulus' human vote distribution (where it has no votes: the curated weights, else equal
  shares of the curated labels, else the original label).
- external: faces outside the study (see `external_pool`), so the study is a clean test set.

With augmentation the distorted half of the batches is not read from the store: each draw renders
a fresh distortion (a random registry distortion and level, new noise) of a training original.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from disfer.data.distortions import DISTORTIONS, render, stimulus_seed
from disfer.emotions import EMOTION_INDEX, EMOTIONS
from disfer.errors import ConfigError
from disfer.finetune.sampling import DISTORTED, ORIGINAL, Split, split_sources
from disfer.finetune.targets import ItemLabels, distribution_from, single_label
from disfer.finetune.train import AUGMENT, TrainData
from disfer.images import stack_blobs
from disfer.store import Store


@dataclass
class Pool:
    train: TrainData
    val: TrainData
    split: Split
    summary: dict


def source_splits(store: Store) -> list[str]:
    """The splits of the ingested faces (the FER-2013 Usage column: Training, PublicTest, ...)."""
    with store.read() as con:
        return [r[0] for r in con.execute("SELECT DISTINCT split FROM sources WHERE split IS NOT NULL "
                                          "ORDER BY 1").fetchall()]


def check_split(store: Store, split: str | None) -> str | None:
    """`split` when some ingested face is in it (None: every split); the one rule for --train-split."""
    if split is None:
        return None
    known = source_splits(store)
    if split not in known:
        raise ConfigError(f"unknown split {split!r} (the store's faces are in: {', '.join(known) or 'no split'})")
    return split


def _stimuli(store: Store, source_ids: list[int] | None, distortions: list[str] | None) -> pd.DataFrame:
    sql = ("SELECT st.stimulus_id, st.source_id, st.distortion, st.level, st.pixels, s.original_label, s.split "
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


def _study_distortions(store: Store) -> dict[str, tuple[float, ...]]:
    """The study's distortions and the parameter of each level, as built (the registry's unless
    the build set its own)."""
    with store.read() as con:
        rows = con.execute("SELECT distortion, level, any_value(param) FROM stimuli "
                           "WHERE distortion <> 'original' GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    out: dict[str, list[float]] = {}
    for name, _level, param in rows:
        if name in DISTORTIONS and param is not None:
            out.setdefault(name, []).append(float(param))
    return {k: tuple(v) for k, v in out.items()}


def external_pool(store: Store, distortion: str | None, seed: int = 0, val_fraction: float = 0.1,
                  excluded: set[int] | frozenset[int] = frozenset(), split: str | None = None) -> Pool:
    """Faces outside the study (ingested, labelled, no stimulus built from them), split
    source-disjointly; the distorted half of every batch is rendered on the fly with the study's
    distortion (`distortion`, or every distortion of the study when None) at a random level of the
    study's parameters. Validation: the held-out outside faces, original and every level, rendered
    once with seeds of their own. The study's stimuli are then a test set no run has touched.

    `excluded`: sources a curator excluded (not faces, wrong faces), left out. `split`: only the
    outside faces of that split (e.g. 'Training', or 'PrivateTest' for a study of PublicTest).
    """
    split = check_split(store, split)
    levels = _study_distortions(store)
    if not levels:
        raise ConfigError(f"{store.path}: no distorted stimuli in the study; build a study first "
                          "(`disfer build` or `disfer demo`)")
    if distortion is not None and distortion not in levels:
        raise ConfigError(f"{store.path}: the study has no {distortion} stimuli to fine-tune for")
    chosen = {distortion: levels[distortion]} if distortion else levels
    with store.read() as con:
        df = con.execute(
            "SELECT source_id, original_label, pixels FROM sources WHERE pixels IS NOT NULL "
            "AND original_label IN (SELECT unnest(?::TEXT[])) "
            "AND source_id NOT IN (SELECT DISTINCT source_id FROM stimuli) "
            "AND (?::TEXT IS NULL OR split = ?::TEXT) ORDER BY source_id",
            [list(EMOTIONS), split, split]).df()
    df = df[~df["source_id"].isin(list(excluded))].reset_index(drop=True)
    if df.empty:
        where = f" in split {split!r}" if split else ""
        raise ConfigError(f"{store.path}: no faces outside the study{where} to train on; ingest the "
                          "FER-2013 Training split or build the study from one split only")
    sources = df[["source_id", "original_label"]].rename(columns={"original_label": "label"})
    present = tuple(e for e in EMOTIONS if (sources["label"] == e).sum() >= 2)
    split = split_sources(sources, seed=seed, val_fraction=val_fraction, required=present)
    if not split.val_sources:
        raise ConfigError(f"{store.path}: too few faces outside the study for a validation split "
                          "(at least 2 of one emotion); ingest the FER-2013 Training split")
    faces = stack_blobs(df["pixels"].tolist()).copy()
    primary = df["original_label"].map(EMOTION_INDEX).to_numpy()
    ids = df["source_id"].to_numpy()
    in_val = df["source_id"].isin(split.val_sources).to_numpy()

    t = np.flatnonzero(~in_val)
    n = len(t)
    train = TrainData(np.concatenate([faces[t], faces[t]]),
                      np.array([ORIGINAL] * n + [DISTORTED] * n),
                      np.array(["original"] * n + [AUGMENT] * n, dtype=object),
                      single_label(np.concatenate([primary[t], primary[t]])),
                      np.concatenate([ids[t], ids[t]]),
                      np.array([f"{i}-original-0" for i in ids[t]] + [f"{i}-rendered" for i in ids[t]],
                               dtype=object))
    v = np.flatnonzero(in_val)
    vf, vk, vd, vl, vs, vi = [faces[v]], [ORIGINAL] * len(v), ["original"] * len(v), [primary[v]], \
        [ids[v]], [f"{i}-original-0" for i in ids[v]]
    for name, params in chosen.items():
        for level, param in enumerate(params, start=1):
            vf.append(np.stack([render(faces[i], name, level, stimulus_seed(seed, int(ids[i]), name, level),
                                       param=param) for i in v]))
            vk += [DISTORTED] * len(v)
            vd += [name] * len(v)
            vl.append(primary[v])
            vs.append(ids[v])
            vi += [f"{i}-{name}-{level}" for i in ids[v]]
    val = TrainData(np.concatenate(vf), np.array(vk), np.array(vd, dtype=object),
                    single_label(np.concatenate(vl)), np.concatenate(vs), np.array(vi, dtype=object))
    summary = _summary(train, val, split, val_fraction)
    summary["render"] = {name: list(params) for name, params in chosen.items()}
    summary["outside_sources"] = len(df)
    return Pool(train, val, split, summary)


def curated_pool(store: Store, ground_truth: pd.DataFrame, distortion: str | None = None, seed: int = 0,
                 val_fraction: float = 0.1, augment: bool = False, split: str | None = None) -> Pool:
    """The curated dataset: every face of the study (or of the study's faces in `split`), with the
    curated labels where a curator decided (the ground truth's labels and primary label, as the
    analysis's curated labels count them) and the original label elsewhere; excluded faces are
    left out."""
    split = check_split(store, split)
    gt = ground_truth
    if gt.empty:
        raise ConfigError(f"{store.path}: no curated labels yet, so the curated dataset is the original "
                          "one; curate some faces first (`disfer curate ...` or the Curation page)")
    excluded = set(gt.loc[gt["status"] == "excluded", "source_id"].astype(int))
    decided = gt[(gt["status"] != "excluded") & (gt["labels"].map(len) > 0)].set_index("source_id")
    distortions = None if distortion is None else ["original", distortion]
    df = _stimuli(store, None, distortions)
    if df.empty:
        raise ConfigError(f"{store.path}: no stimuli; build a study first (`disfer build` or `disfer demo`)")
    if split is not None:
        df = df[df["split"] == split].reset_index(drop=True)
        if df.empty:
            raise ConfigError(f"{store.path}: no face of the study is in split {split!r}")
    is_decided = df["source_id"].isin(decided.index).to_numpy()
    usable = ~df["source_id"].isin(list(excluded)).to_numpy() & (is_decided | df["original_label"].notna().to_numpy())
    df, is_decided = df[usable].reset_index(drop=True), is_decided[usable]
    if df.empty:
        raise ConfigError(f"{store.path}: every face of the study is excluded (or has no label); "
                          "nothing to fine-tune on")
    primary = df["original_label"].to_numpy(dtype=object).copy()
    mask = np.zeros((len(df), len(EMOTIONS)), dtype=bool)
    weights = np.zeros((len(df), len(EMOTIONS)))
    for i in range(len(df)):
        sid = int(df["source_id"].iat[i])
        if is_decided[i]:
            row = decided.loc[sid]
            primary[i] = row["primary_label"]
            w = row["weights"]
            for j, lab in enumerate(row["labels"]):
                mask[i, EMOTION_INDEX[lab]] = True
                weights[i, EMOTION_INDEX[lab]] = w[j] if w is not None else 1.0
        else:
            mask[i, EMOTION_INDEX[primary[i]]] = True
            weights[i, EMOTION_INDEX[primary[i]]] = 1.0
    counts = _vote_counts(store, df["stimulus_id"].to_numpy())
    labels = ItemLabels(pd.Series(primary).map(EMOTION_INDEX).to_numpy(), mask,
                        distribution_from(counts, mask, weights))
    sources = pd.DataFrame({"source_id": df["source_id"], "label": primary}).drop_duplicates("source_id")
    # An emotion with a single face (a curator's relabel can make one) trains only.
    present = tuple(e for e in EMOTIONS if (sources["label"] == e).sum() >= 2)
    train, val, split = _split_pool(df, labels, sources, seed, val_fraction, present, augment)
    if not len(val):
        raise ConfigError(f"{store.path}: too few faces for a validation split (at least 2 of one emotion)")
    summary = _summary(train, val, split, val_fraction)
    summary["stimuli_with_votes"] = int((counts.sum(axis=1) > 0).sum())
    summary["curated_sources"] = int(sources["source_id"].isin(decided.index).sum())
    summary["original_label_sources"] = int((~sources["source_id"].isin(decided.index)).sum())
    summary["excluded_sources"] = len(excluded)
    return Pool(train, val, split, summary)


def _summary(train: TrainData, val: TrainData, split: Split, val_fraction: float) -> dict:
    return {
        "train_images": len(train), "val_images": len(val),
        "train_sources": split.train_sources, "val_sources": split.val_sources,
        "val_sources_per_emotion": split.val_per_class,
        "split": f"source-disjoint: per emotion, round({val_fraction:.0%}) of the faces (at least 1), "
                 "drawn with the seed, are held out with all their versions",
    }
