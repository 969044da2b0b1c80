"""Build analysis test studies by writing rows straight into the store (no ingest/build needed).

`insert_study` writes a hand-made study; `random_study` draws a study shaped like the paper's
(sources x 10 versions, playlists of 40 stimuli each rated by the same group of participants,
model predictions that degrade with the distortion level).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from disfer.emotions import EMOTIONS

CONDITIONS = [("original", 0)] + [(d, lv) for d in ("gaussian_blur", "gaussian_noise", "salt_pepper")
                                  for lv in (1, 2, 3)]


def stimulus_id(source_id: int, distortion: str, level: int) -> str:
    return f"{source_id}-{distortion}-{level}"


def _split(stim: str) -> tuple[int, str, int]:
    src, rest = stim.split("-", 1)
    dist, level = rest.rsplit("-", 1)
    return int(src), dist, int(level)


def write_frames(store, sources: pd.DataFrame, stimuli: pd.DataFrame, votes: pd.DataFrame | None = None,
                 models: pd.DataFrame | None = None, predictions: pd.DataFrame | None = None,
                 playlists: pd.DataFrame | None = None, meta: dict | None = None) -> None:
    """Bulk insert (one transaction). Frames carry the table's column names."""
    with store.write() as con:
        con.register("src_df", sources)
        con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label, split)"
                    " SELECT source_id, 'test', source_id, label, 'PrivateTest' FROM src_df")
        con.register("stim_df", stimuli)
        con.execute("INSERT INTO stimuli (stimulus_id, source_id, distortion, level, seed, pixels)"
                    " SELECT stimulus_id, source_id, distortion, level, 0, ''::BLOB FROM stim_df")
        if votes is not None and len(votes):
            con.register("part_df", pd.DataFrame({"participant_id": votes["participant_id"].unique()}))
            con.execute("INSERT INTO participants (participant_id, crowd) SELECT participant_id, 'study'"
                        " FROM part_df")
            con.register("vote_df", votes)
            con.execute("INSERT INTO votes (participant_id, stimulus_id, emotion)"
                        " SELECT participant_id, stimulus_id, emotion FROM vote_df")
        if models is not None and len(models):
            con.register("model_df", models)
            con.execute("INSERT INTO models (model_id, family, parent_id) SELECT model_id, family, parent_id"
                        " FROM model_df")
        if predictions is not None and len(predictions):
            probs = np.zeros((len(predictions), 7))
            code = predictions["predicted"].map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy(np.int64)
            probs[np.arange(len(predictions)), code] = 1.0
            frame = predictions[["model_id", "stimulus_id", "predicted"]].assign(
                **{e: probs[:, i] for i, e in enumerate(EMOTIONS)})
            con.register("pred_df", frame)
            con.execute("INSERT INTO predictions (model_id, stimulus_id, anger, disgust, fear, happiness,"
                        " neutral, sadness, surprise, predicted) SELECT model_id, stimulus_id, anger, disgust,"
                        " fear, happiness, neutral, sadness, surprise, predicted FROM pred_df")
        if playlists is not None and len(playlists):
            con.register("pl_df", playlists)
            con.execute("INSERT INTO playlists SELECT playlist_id, stimulus_id, position FROM pl_df")
        for key, value in (meta or {}).items():
            con.execute("INSERT INTO study_meta VALUES (?, ?)", [key, value])


def insert_study(store, labels: dict[int, str | None], votes: list[tuple[str, str, str]] = (),
                 predictions: dict[str, dict[str, str]] | None = None,
                 parents: dict[str, str] | None = None, stimuli: list[str] = ()) -> None:
    """A hand-made study: labels per source, votes (participant, stimulus_id, emotion),
    predictions {model: {stimulus_id: emotion}}. Stimuli are those named anywhere."""
    predictions = predictions or {}
    parents = parents or {}
    names = set(stimuli) | {v[1] for v in votes} | {s for p in predictions.values() for s in p}
    rows = [(s, *_split(s)) for s in sorted(names)]
    sources = pd.DataFrame({"source_id": list(labels), "label": list(labels.values())})
    stim = pd.DataFrame(rows, columns=["stimulus_id", "source_id", "distortion", "level"])
    vote_df = pd.DataFrame(list(votes), columns=["participant_id", "stimulus_id", "emotion"])
    model_df = pd.DataFrame({"model_id": list(predictions), "family": "test",
                             "parent_id": [parents.get(m) for m in predictions]})
    pred_df = pd.DataFrame([(m, s, e) for m, p in predictions.items() for s, e in p.items()],
                           columns=["model_id", "stimulus_id", "predicted"])
    write_frames(store, sources, stim, vote_df, model_df, pred_df)


def random_study(store, n_sources: int = 84, raters_per_playlist: int = 50, playlist_size: int = 40,
                 models: dict[str, float] | None = None, seed: int = 0, parents: dict | None = None,
                 vote_probs: np.ndarray | None = None, labels: np.ndarray | None = None) -> dict:
    """A study like the paper's: n_sources x 10 versions, every playlist rated by its own participants.

    models: {model_id: accuracy on originals}; accuracy falls with the level. vote_probs: optional
    (n_sources, 7) distribution humans draw their votes from (else the label with 70% chance at
    level 0, falling by 15 points per level). Returns the arrays drawn, for the tests' checks.
    """
    rng = np.random.default_rng(seed)
    models = {"model_a": 0.7, "model_b": 0.6} if models is None else models
    if labels is None:
        labels = rng.integers(0, 7, n_sources)
    src_ids = np.arange(1, n_sources + 1)
    sources = pd.DataFrame({"source_id": src_ids, "label": [EMOTIONS[i] for i in labels]})
    stim_src = np.repeat(src_ids, len(CONDITIONS))
    stim_cond = np.tile(np.arange(len(CONDITIONS)), n_sources)
    dist = np.array([c[0] for c in CONDITIONS], dtype=object)[stim_cond]
    lvl = np.array([c[1] for c in CONDITIONS])[stim_cond]
    sid = [f"{s}-{d}-{v}" for s, d, v in zip(stim_src, dist, lvl, strict=True)]
    stimuli = pd.DataFrame({"stimulus_id": sid, "source_id": stim_src, "distortion": dist, "level": lvl})
    n_stim = len(stimuli)
    order = rng.permutation(n_stim)
    playlist = np.empty(n_stim, np.int64)
    playlist[order] = np.arange(n_stim) // playlist_size
    playlists = pd.DataFrame({"playlist_id": playlist, "stimulus_id": sid,
                              "position": np.argsort(order) % playlist_size})
    # Votes: raters_per_playlist people per playlist, each voting once on every stimulus of it
    # (rater slot r of playlist k is participant k * raters_per_playlist + r).
    lab = labels[stim_src - 1]
    v_stim = np.tile(np.arange(n_stim), raters_per_playlist)
    v_part = playlist[v_stim] * raters_per_playlist + np.repeat(np.arange(raters_per_playlist), n_stim)
    if vote_probs is None:
        p_right = 0.7 - 0.15 * lvl[v_stim]
        right = rng.random(len(v_stim)) < p_right
        other = (lab[v_stim] + rng.integers(1, 7, len(v_stim))) % 7
        choice = np.where(right, lab[v_stim], other)
    else:
        # The source's distribution, blended towards uniform as the distortion grows.
        mix = (0.15 * lvl)[:, None]
        probs = (1 - mix) * vote_probs[stim_src - 1] + mix / 7
        cum = np.cumsum(probs, axis=1)[v_stim]
        choice = np.minimum((rng.random(len(v_stim))[:, None] > cum).sum(axis=1), 6)
    votes = pd.DataFrame({"participant_id": np.char.add("p", v_part.astype(str)),
                          "stimulus_id": np.array(sid, dtype=object)[v_stim],
                          "emotion": np.array(EMOTIONS, dtype=object)[choice]})
    preds, model_rows = [], []
    for m, acc in models.items():
        p_right = np.clip(acc - 0.12 * lvl, 0.05, 1)
        right = rng.random(n_stim) < p_right
        guess = np.where(right, lab, (lab + rng.integers(1, 7, n_stim)) % 7)
        preds.append(pd.DataFrame({"model_id": m, "stimulus_id": sid,
                                   "predicted": np.array(EMOTIONS, dtype=object)[guess]}))
        model_rows.append((m, "test", (parents or {}).get(m)))
    write_frames(store, sources, stimuli, votes,
                 pd.DataFrame(model_rows, columns=["model_id", "family", "parent_id"]),
                 pd.concat(preds, ignore_index=True) if preds else None, playlists,
                 meta={"study_kind": "demo"})
    return {"labels": labels, "votes": votes, "stimuli": stimuli, "predictions": preds}
