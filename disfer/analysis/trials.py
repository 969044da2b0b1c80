"""The study as arrays, loaded from the store once, and the model-vs-human trial table.

Humans and models are raters of the same stimuli: a human trial is one vote, a model trial is one
prediction. `Study` keeps them as integer-coded numpy arrays (what the measures compute on, fast at
FERPlus scale); `load_trials` / `Study.trials()` give the same data as one DataFrame
(rater, rater_kind, stimulus_id, source_id, distortion, level, label, predicted, correct).

Ground truth is a boolean matrix `truth` (stimuli x 7): a prediction is correct when it is any of the
true labels (curated truth may hold several). `label` is the primary label (the first, or the one of
highest weight); stimuli without a known label have an all-False row and take part in agreement
measures but not in accuracies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from disfer.data import rating
from disfer.data.distortions import DISTORTION_ORDER, distortion_rank
from disfer.emotions import EMOTION_INDEX, EMOTIONS
from disfer.errors import ConfigError
from disfer.ledger import current_ground_truth

LABEL_KINDS = ("original", "curated")
HUMANS = "humans"  # the rater name of the human majority in curves and reports

# Index tables (temporary, on the read connection) number stimuli, participants and models, so
# the votes and predictions come back as integer codes: DuckDB does the string joins, and no
# Python string handling touches the (possibly millions of) votes. Stimuli are numbered in
# canonical order: source, distortion (DISTORTION_ORDER, then others by name), level.
_INDEX_SQL = (
    ("CREATE TEMP TABLE stim_index AS SELECT stimulus_id, (row_number() OVER (ORDER BY source_id,"
     " coalesce(nullif(list_position(?, distortion), 0), 999), distortion, level) - 1)::INTEGER AS s"
     " FROM stimuli", "distortions"),
    ("CREATE TEMP TABLE part_index AS SELECT participant_id,"
     " (row_number() OVER (ORDER BY participant_id) - 1)::INTEGER AS p FROM participants WHERE crowd = ?"
     # participants who failed the study's attention checks, when they are left out (the default)
     " AND NOT (? AND participant_id IN (SELECT participant_id FROM rating_sessions WHERE status = 'failed'))",
     "crowd"),
    ("CREATE TEMP TABLE model_index AS SELECT model_id, parent_id,"
     " (row_number() OVER (ORDER BY model_id) - 1)::INTEGER AS m FROM models", None),
)

_STIMULI_SQL = """
SELECT s.stimulus_id, s.source_id, s.distortion, s.level::BIGINT AS level, src.original_label AS label
FROM stim_index x JOIN stimuli s USING (stimulus_id) JOIN sources src USING (source_id)
ORDER BY x.s
"""

_VOTES_SQL = """
SELECT ix.s AS stim, px.p AS rater, (coalesce(list_position(?, v.emotion), 0) - 1)::TINYINT AS choice
FROM votes v
JOIN stim_index ix USING (stimulus_id)
JOIN part_index px USING (participant_id)
"""

_PREDICTIONS_SQL = """
SELECT mx.m AS model, ix.s AS stim, (coalesce(list_position(?, p.predicted), 0) - 1)::TINYINT AS choice
FROM predictions p
JOIN stim_index ix USING (stimulus_id)
JOIN model_index mx USING (model_id)
"""


@dataclass(frozen=True, eq=False)
class Study:
    """One study's stimuli, votes and predictions, integer coded.

    stimuli: one row per stimulus (stimulus_id, source_id, distortion, level, label), in canonical
        order (source, distortion, level); row i is stimulus index i everywhere else.
    truth: (S, 7) bool, the emotions that count as correct for each stimulus.
    vote_stim, vote_rater, vote_choice: one entry per human vote (stimulus index, participant
        index, emotion index).
    participants: participant ids, indexed by vote_rater.
    models: model ids; model_pred: (M, S) int8 predicted emotion index, -1 where none.
    model_parent: model id -> parent model id (fine-tuned variants).
    """

    stimuli: pd.DataFrame
    truth: np.ndarray
    vote_stim: np.ndarray
    vote_rater: np.ndarray
    vote_choice: np.ndarray
    participants: np.ndarray
    models: tuple[str, ...] = ()
    model_pred: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))
    model_parent: dict[str, str] = field(default_factory=dict)
    label_kind: str = "original"

    # -- derived, computed once per Study -------------------------------------------------------
    @property
    def n_stimuli(self) -> int:
        return len(self.stimuli)

    @cached_property
    def counts(self) -> np.ndarray:
        """(S, 7) int: human votes per stimulus and emotion."""
        flat = self.vote_stim.astype(np.int64) * 7 + self.vote_choice
        return np.bincount(flat, minlength=self.n_stimuli * 7).reshape(self.n_stimuli, 7)

    @cached_property
    def has_label(self) -> np.ndarray:
        return self.truth.any(axis=1)

    @cached_property
    def label_index(self) -> np.ndarray:
        """(S,) primary label index, -1 where unknown."""
        codes = self.stimuli["label"].map(EMOTION_INDEX)
        return codes.fillna(-1).to_numpy(dtype=np.int64)

    @cached_property
    def source_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(source ids in order, per-stimulus index into them)."""
        ids, inverse = np.unique(self.stimuli["source_id"].to_numpy(), return_inverse=True)
        return ids, inverse

    @cached_property
    def conditions(self) -> pd.DataFrame:
        """The (distortion, level) pairs present, in canonical order, with their index."""
        cond = self.stimuli[["distortion", "level"]].drop_duplicates()
        cond = cond.assign(_o=cond["distortion"].map(distortion_rank)).sort_values(["_o", "level"])
        return cond.drop(columns="_o").reset_index(drop=True)

    @cached_property
    def condition_index(self) -> np.ndarray:
        """(S,) index into `conditions` for every stimulus."""
        keys = pd.MultiIndex.from_frame(self.conditions)
        return keys.get_indexer(pd.MultiIndex.from_frame(self.stimuli[["distortion", "level"]]))

    def model_correct(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(defined, correct) per stimulus: defined = the model predicted it and a label exists."""
        pred = self.model_pred[self.models.index(model)].astype(np.int64)
        defined = (pred >= 0) & self.has_label
        correct = np.zeros(self.n_stimuli, bool)
        correct[defined] = self.truth[np.flatnonzero(defined), pred[defined]]
        return defined, correct

    def vote_correct(self) -> tuple[np.ndarray, np.ndarray]:
        """(defined, correct) per vote."""
        return self._vote_correct

    @cached_property
    def _vote_correct(self) -> tuple[np.ndarray, np.ndarray]:
        defined = self.has_label[self.vote_stim]
        return defined, self.truth[self.vote_stim, self.vote_choice] & defined

    def trials(self) -> pd.DataFrame:
        """The model-vs-human trial table: one row per vote and per model prediction."""
        st = self.stimuli
        parts = []
        if len(self.vote_stim):
            parts.append(_trial_frame(st, self.truth, self.vote_stim, self.vote_choice,
                                      self.participants[self.vote_rater], "human"))
        for m, model in enumerate(self.models):
            stim = np.flatnonzero(self.model_pred[m] >= 0)
            parts.append(_trial_frame(st, self.truth, stim, self.model_pred[m, stim],
                                      np.full(len(stim), model, dtype=object), "model"))
        if not parts:
            return _trial_frame(st, self.truth, np.zeros(0, np.int64), np.zeros(0, np.int64),
                                np.zeros(0, dtype=object), "human")
        return pd.concat(parts, ignore_index=True)


def _trial_frame(st, truth, stim, choice, rater, kind) -> pd.DataFrame:
    stim = np.asarray(stim, np.int64)
    choice = np.asarray(choice, np.int64)
    defined = truth[stim].any(axis=1)
    correct = pd.array(truth[stim, choice], dtype="boolean")
    correct[~defined] = pd.NA
    return pd.DataFrame({
        "rater": pd.Categorical(rater),
        "rater_kind": kind,
        "stimulus_id": st["stimulus_id"].to_numpy()[stim],
        "source_id": st["source_id"].to_numpy()[stim],
        "distortion": st["distortion"].to_numpy()[stim],
        "level": st["level"].to_numpy()[stim],
        "label": st["label"].to_numpy()[stim],
        "predicted": pd.Categorical.from_codes(choice, categories=list(EMOTIONS)),
        "correct": correct,
    })


def _truth_matrix(labels: pd.Series) -> np.ndarray:
    codes = labels.map(EMOTION_INDEX).to_numpy(dtype=np.float64, na_value=np.nan)
    known = np.flatnonzero(~np.isnan(codes))
    truth = np.zeros((len(labels), 7), bool)
    truth[known, codes[known].astype(np.int64)] = True
    return truth


def _curated_truth(store, stimuli: pd.DataFrame, truth: np.ndarray):
    """Apply the curated ground truth: several labels may count; excluded sources are dropped.

    Sources without a curation decision keep their original label. Returns (stimuli, truth, keep)
    with keep the mask of stimuli kept.
    """
    gt = current_ground_truth(store)
    excluded = set(gt.loc[gt["status"] == "excluded", "source_id"].astype(int))
    decided = gt[(gt["status"] != "excluded") & (gt["labels"].map(len) > 0)].set_index("source_id")
    keep = ~stimuli["source_id"].isin(excluded).to_numpy()
    stimuli = stimuli[keep].reset_index(drop=True)
    truth = truth[keep].copy()
    primary = stimuli["label"].to_numpy(dtype=object).copy()
    for i in np.flatnonzero(stimuli["source_id"].isin(decided.index).to_numpy()):
        row = decided.loc[int(stimuli["source_id"].iat[i])]
        truth[i] = False
        truth[i, [EMOTION_INDEX[lab] for lab in row["labels"]]] = True
        primary[i] = row["primary_label"]
    return stimuli.assign(label=primary), truth, keep


def load_study(store, crowd: str = "study", label_kind: str = "original",
               include_failed: bool | None = None) -> Study:
    """Read stimuli, the crowd's votes and every model's predictions (three index tables, then
    three queries returning integer codes).

    include_failed: keep the votes of participants who failed the rating page's attention checks;
    None follows the study's setting (left out by default; disfer.data.rating)."""
    if label_kind not in LABEL_KINDS:
        raise ConfigError(f"unknown label kind {label_kind!r} (expected one of {', '.join(LABEL_KINDS)})")
    with store.read() as con:
        leave_out = rating.exclude_failed(con) if include_failed is None else not include_failed
        params = {"distortions": [list(DISTORTION_ORDER)], "crowd": [crowd, leave_out], None: None}
        for sql, key in _INDEX_SQL:
            con.execute(sql, params[key])
        stimuli = con.execute(_STIMULI_SQL).df()
        participants = np.asarray(
            con.execute("SELECT participant_id FROM part_index ORDER BY p").fetchnumpy()["participant_id"],
            dtype=object)
        models = con.execute("SELECT model_id, parent_id FROM model_index ORDER BY m").fetchall()
        votes = con.execute(_VOTES_SQL, [list(EMOTIONS)]).fetchnumpy()
        preds = con.execute(_PREDICTIONS_SQL, [list(EMOTIONS)]).fetchnumpy()
    stimuli["label"] = stimuli["label"].astype(object).where(stimuli["label"].notna(), None)
    truth = _truth_matrix(stimuli["label"])
    vote_stim = np.asarray(votes["stim"], np.int64)
    vote_rater = np.asarray(votes["rater"], np.int32)
    choice = np.asarray(votes["choice"], np.int8)
    pred_stim = np.asarray(preds["stim"], np.int64)
    pred_model = np.asarray(preds["model"], np.int64)
    pchoice = np.asarray(preds["choice"], np.int8)
    if label_kind == "curated":
        stimuli, truth, keep = _curated_truth(store, stimuli, truth)
        new_index = np.cumsum(keep) - 1
        v_keep, p_keep = keep[vote_stim], keep[pred_stim]
        vote_stim, vote_rater, choice = new_index[vote_stim[v_keep]], vote_rater[v_keep], choice[v_keep]
        pred_stim, pred_model, pchoice = new_index[pred_stim[p_keep]], pred_model[p_keep], pchoice[p_keep]
    ok = choice >= 0  # a vote naming no canonical emotion cannot be analysed; import refuses them
    model_pred = np.full((len(models), len(stimuli)), -1, np.int8)
    pok = pchoice >= 0
    model_pred[pred_model[pok], pred_stim[pok]] = pchoice[pok]
    # Models without a single prediction on this study are left out: nothing to analyse.
    has_any = (model_pred >= 0).any(axis=1)
    kept = [m for m, keep_m in zip(models, has_any, strict=True) if keep_m]
    return Study(
        stimuli=stimuli,
        truth=truth,
        vote_stim=vote_stim[ok].astype(np.int32),
        vote_rater=vote_rater[ok],
        vote_choice=choice[ok],
        participants=participants,
        models=tuple(m for m, _ in kept),
        model_pred=model_pred[has_any],
        model_parent={m: p for m, p in kept if p},
        label_kind=label_kind,
    )


def as_study(data, label_kind: str = "original") -> Study:
    """Accept a Study, a Store (loaded here) or a trial table (from `load_trials`)."""
    if isinstance(data, Study):
        return data
    if isinstance(data, pd.DataFrame):
        return study_from_trials(data)
    if hasattr(data, "read") and hasattr(data, "change_counter"):
        return load_study(data, label_kind=label_kind)
    raise TypeError(f"expected a Study, a Store or a trial table, got {type(data).__name__}")


def study_from_trials(trials: pd.DataFrame) -> Study:
    """Rebuild a Study from a trial table (truth = the label plus any prediction marked correct)."""
    cols = ["stimulus_id", "source_id", "distortion", "level", "label"]
    stimuli = trials[cols].drop_duplicates("stimulus_id")
    stimuli = stimuli.assign(_o=stimuli["distortion"].map(distortion_rank))
    stimuli = stimuli.sort_values(["source_id", "_o", "level"]).drop(columns="_o").reset_index(drop=True)
    stimuli["label"] = stimuli["label"].astype(object).where(stimuli["label"].notna(), None)
    index = pd.Index(stimuli["stimulus_id"])
    truth = _truth_matrix(stimuli["label"])
    stim = index.get_indexer(trials["stimulus_id"])
    choice = trials["predicted"].astype(str).map(EMOTION_INDEX).to_numpy(np.int64)
    marked = trials["correct"].fillna(False).to_numpy(bool)
    truth[stim[marked], choice[marked]] = True
    human = (trials["rater_kind"] == "human").to_numpy()
    raters = trials["rater"].astype(str).to_numpy()
    participants, vote_rater = np.unique(raters[human], return_inverse=True)
    models = tuple(sorted(set(raters[~human])))
    model_pred = np.full((len(models), len(stimuli)), -1, np.int8)
    mrow = pd.Index(models).get_indexer(raters[~human])
    model_pred[mrow, stim[~human]] = choice[~human]
    return Study(stimuli=stimuli, truth=truth, vote_stim=stim[human].astype(np.int32),
                 vote_rater=vote_rater.astype(np.int32), vote_choice=choice[human].astype(np.int8),
                 participants=participants.astype(object), models=models, model_pred=model_pred)


def load_trials(store, crowd: str = "study", label_kind: str = "original") -> pd.DataFrame:
    """The trial table of a study: one row per human vote and per model prediction.

    Columns: rater (participant id or model id), rater_kind ('human' | 'model'), stimulus_id,
    source_id, distortion, level, label (primary true label, None if unknown), predicted,
    correct (nullable boolean; NA where the label is unknown).
    """
    return load_study(store, crowd=crowd, label_kind=label_kind).trials()
