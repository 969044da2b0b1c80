"""Label curation: append-only decision events and the ground truth they add up to.

Every decision is one row in `curation_events`; nothing is ever updated or deleted. Undo is one
more event (status 'undo', `undoes` = the reverted event). The current ground truth is a view over
the events that are not undone:

- A curator's *opinion* on a source is that curator's latest live decision (role 'curator').
- A lead's *resolution* (role 'lead', made with `resolve`) settles a source for everybody: the
  latest live resolution is the ground truth, whatever curators said before or after, until it is
  undone.
- Without a resolution, when every curator's opinion agrees (same set of labels, or all
  'excluded'), the latest opinion is the ground truth; when they disagree, the source's status is
  `disputed` and its labels are the latest opinion's, provisionally, until a lead resolves it.

Statuses a curator sets: confirmed (the original label stands), relabeled (the primary label
differs from the original), ambiguous (two or more emotions), excluded (not a usable face; no
labels). The primary label is the label with the largest weight (the first on a tie, or the
first given when there are no weights).

Writes are short single-statement transactions through `Store.write_retrying`, so many browser
sessions and CLI processes can record decisions at once without losing any.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from itertools import combinations

import numpy as np
import pandas as pd

from disfer.emotions import EMOTIONS, parse_emotion_name
from disfer.errors import ConfigError
from disfer.store import Store

DECISION_STATUSES: tuple[str, ...] = ("confirmed", "relabeled", "ambiguous", "excluded")
# Statuses of the ground-truth view: a decision's, 'disputed' (curators disagree, no resolution)
# and 'uncurated' (used by review_queue and export for sources with no live decision).
VIEW_STATUSES: tuple[str, ...] = DECISION_STATUSES + ("disputed", "uncurated")
WEIGHT_TOLERANCE = 1e-6

GROUND_TRUTH_COLUMNS = ["source_id", "labels", "weights", "status", "curator", "decided_at",
                        "event_id", "primary_label", "original_label", "resolved", "n_curators"]


# -- validation ---------------------------------------------------------------------------------
def parse_labels(labels: object) -> list[str]:
    """Canonical emotion names from a list or a comma-separated string; no duplicates."""
    if labels is None:
        return []
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    out: list[str] = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            name = parse_emotion_name(item)
        except ValueError as err:
            raise ConfigError(f"labels: {err}") from None
        if name in out:
            raise ConfigError(f"labels: {name!r} is given twice")
        out.append(name)
    return out


def parse_weights(weights: object, n_labels: int) -> list[float] | None:
    """Weights from a list or a comma-separated string: one per label, >= 0, summing to 1."""
    if weights is None:
        return None
    items = weights.split(",") if isinstance(weights, str) else list(weights)
    items = [w for w in items if not (isinstance(w, str) and not w.strip())]
    if not items:
        return None
    try:
        values = [float(w) for w in items]
    except (TypeError, ValueError):
        raise ConfigError(f"weights: {weights!r} are not numbers") from None
    if len(values) != n_labels:
        raise ConfigError(f"weights: {len(values)} weights for {n_labels} labels; give one per label")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(f"weights: {values} must be finite and >= 0")
    if abs(sum(values) - 1.0) > WEIGHT_TOLERANCE:
        raise ConfigError(f"weights: {values} sum to {sum(values):.6g}, not 1")
    return values


def primary_label(labels: list[str], weights: list[float] | None) -> str | None:
    """The label with the largest weight (first on a tie), or the first label."""
    if not labels:
        return None
    if weights is None:
        return labels[0]
    return labels[int(np.argmax(weights))]


def suggest_status(labels: list[str], weights: list[float] | None, original_label: str | None) -> str:
    """The status a decision with these labels would usually take (the page's default)."""
    if not labels:
        return "excluded"
    if len(labels) > 1:
        return "ambiguous"
    return "confirmed" if primary_label(labels, weights) == original_label else "relabeled"


@dataclass(frozen=True)
class Decision:
    """A validated decision, ready to append."""

    source_id: int
    labels: list[str]
    weights: list[float] | None
    status: str
    curator: str
    note: str | None


def validate_decision(source_id, labels, weights, status, curator, note=None,
                      original_label: str | None = None) -> Decision:
    """Check a decision's fields against each other (and the source's original label when given)."""
    try:
        source_id = int(source_id)
    except (TypeError, ValueError):
        raise ConfigError(f"source_id {source_id!r} is not an integer") from None
    status = str(status).strip().lower()
    if status not in DECISION_STATUSES:
        raise ConfigError(f"unknown status {status!r} (expected one of {', '.join(DECISION_STATUSES)})")
    curator = (curator or "").strip()
    if not curator:
        raise ConfigError("a curator name is required")
    names = parse_labels(labels)
    w = parse_weights(weights, len(names))
    if status == "excluded":
        if names:
            raise ConfigError("status 'excluded' takes no labels (the face is not usable)")
    elif not names:
        raise ConfigError(f"status {status!r} needs at least one label")
    if status == "ambiguous" and len(names) < 2:
        raise ConfigError("status 'ambiguous' needs two or more labels")
    primary = primary_label(names, w)
    if original_label is not None and status == "confirmed" and primary != original_label:
        raise ConfigError(f"source {source_id}: status 'confirmed' keeps the original label "
                          f"{original_label!r}, but the primary label is {primary!r}; use 'relabeled'")
    if original_label is not None and status == "relabeled" and primary == original_label:
        raise ConfigError(f"source {source_id}: status 'relabeled' but the primary label is the "
                          f"original {original_label!r}; use 'confirmed'")
    note = note.strip() if isinstance(note, str) and note.strip() else None
    return Decision(source_id, names, w, status, curator, note)


# -- writes -------------------------------------------------------------------------------------
def _original_label(con, source_id: int) -> tuple[bool, str | None]:
    row = con.execute("SELECT original_label FROM sources WHERE source_id = ?", [source_id]).fetchone()
    return (row is not None, row[0] if row else None)


def _append(store: Store, source_id, labels, weights, status, curator, note, role: str) -> int:
    # Field checks first (no store needed), then the checks against the source inside the same
    # transaction as the insert, so an unknown source writes nothing.
    validate_decision(source_id, labels, weights, status, curator, note)

    def insert(con) -> int:
        exists, original = _original_label(con, int(source_id))
        if not exists:
            raise ConfigError(f"unknown source {source_id}: no such source_id in {store.path}")
        d = validate_decision(source_id, labels, weights, status, curator, note, original)
        return int(con.execute(
            "INSERT INTO curation_events (source_id, curator, labels, weights, status, note, role) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
            [d.source_id, d.curator, d.labels, d.weights, d.status, d.note, role],
        ).fetchone()[0])

    return store.write_retrying(insert)


def record_decision(store: Store, source_id, labels, weights, status, curator, note=None) -> int:
    """Append one curator's decision on a source; returns its event_id."""
    return _append(store, source_id, labels, weights, status, curator, note, role="curator")


def resolve(store: Store, source_id, labels, weights, status, lead, note=None) -> int:
    """Append a lead's resolution: the source's ground truth until the resolution is undone."""
    return _append(store, source_id, labels, weights, status, lead, note, role="lead")


def undo(store: Store, event_id, curator, note=None) -> int:
    """Revert a decision or resolution by appending an 'undo' event; returns the new event_id."""
    curator = (curator or "").strip()
    if not curator:
        raise ConfigError("a curator name is required")
    try:
        event_id = int(event_id)
    except (TypeError, ValueError):
        raise ConfigError(f"event id {event_id!r} is not an integer") from None

    def insert(con) -> int:
        row = con.execute("SELECT source_id, status FROM curation_events WHERE event_id = ?",
                          [event_id]).fetchone()
        if row is None:
            raise ConfigError(f"unknown curation event {event_id}")
        if row[1] == "undo":
            raise ConfigError(f"event {event_id} is itself an undo; record the decision again instead")
        done = con.execute("SELECT event_id FROM curation_events WHERE undoes = ?", [event_id]).fetchone()
        if done is not None:
            raise ConfigError(f"event {event_id} is already undone (by event {done[0]})")
        return int(con.execute(
            "INSERT INTO curation_events (source_id, curator, labels, weights, status, note, undoes, role) "
            "VALUES (?, ?, [], NULL, 'undo', ?, ?, 'curator') RETURNING event_id",
            [row[0], curator, note, event_id],
        ).fetchone()[0])

    return store.write_retrying(insert)


def last_event_id(store: Store, curator: str | None = None) -> int | None:
    """The newest live (not undone, not an undo) event, optionally of one curator: what undo reverts."""
    sql = ("SELECT max(e.event_id) FROM curation_events e WHERE e.status <> 'undo' "
           "AND NOT EXISTS (SELECT 1 FROM curation_events u WHERE u.undoes = e.event_id)")
    params: list = []
    if curator:
        sql += " AND e.curator = ?"
        params.append(curator)
    with store.read() as con:
        value = con.execute(sql, params).fetchone()[0]
    return None if value is None else int(value)


# -- reads --------------------------------------------------------------------------------------
def event_log(store: Store, source_id: int | None = None) -> pd.DataFrame:
    """Every event, oldest first: event_id, source_id, curator, role, decided_at, labels, weights,
    status, note, undoes, undone_by."""
    sql = ("SELECT e.event_id, e.source_id, e.curator, coalesce(e.role, 'curator') AS role, e.decided_at, "
           "e.labels, e.weights, e.status, e.note, e.undoes, u.event_id AS undone_by "
           "FROM curation_events e LEFT JOIN curation_events u ON u.undoes = e.event_id")
    params: list = []
    if source_id is not None:
        sql += " WHERE e.source_id = ?"
        params.append(int(source_id))
    with store.read() as con:
        df = con.execute(sql + " ORDER BY e.event_id", params).df()
    for name in ("undoes", "undone_by"):
        df[name] = pd.Series([None if pd.isna(v) else int(v) for v in df[name]], index=df.index, dtype=object)
    df["note"] = pd.Series([v if isinstance(v, str) else None for v in df["note"]], index=df.index, dtype=object)
    df["labels"] = df["labels"].map(_as_list)
    df["weights"] = df["weights"].map(_as_weights)
    return df


def _as_list(value) -> list[str]:
    # DuckDB hands lists back as arrays or lists, and NULL as None, NaN or pd.NA by pandas' mood.
    return [str(v) for v in value] if hasattr(value, "__len__") and not isinstance(value, str) else []


def _as_weights(value) -> list[float] | None:
    return [float(v) for v in value] if hasattr(value, "__len__") and not isinstance(value, str) else None


def _live_events(store: Store) -> pd.DataFrame:
    """Decisions and resolutions that no undo reverts, with each source's original label."""
    with store.read() as con:
        df = con.execute(
            "SELECT e.event_id, e.source_id, e.curator, coalesce(e.role, 'curator') AS role, "
            "e.decided_at, e.labels, e.weights, e.status, e.note, s.original_label "
            "FROM curation_events e JOIN sources s USING (source_id) "
            "WHERE e.status <> 'undo' "
            "AND NOT EXISTS (SELECT 1 FROM curation_events u WHERE u.undoes = e.event_id) "
            "ORDER BY e.event_id").df()
    df["labels"] = df["labels"].map(_as_list)
    df["weights"] = df["weights"].map(_as_weights)
    return df


def decision_key(labels: list[str], status: str) -> str:
    """What two curators must share to agree: the set of labels, or 'excluded'."""
    return "excluded" if status == "excluded" else "+".join(sorted(labels))


def curator_opinions(store: Store) -> pd.DataFrame:
    """Each curator's latest live decision per source (role 'curator' only), with its key."""
    live = _live_events(store)
    ops = live[live["role"] == "curator"]
    ops = ops.sort_values("event_id").groupby(["source_id", "curator"], as_index=False).tail(1)
    ops = ops.assign(key=[decision_key(lab, st) for lab, st in zip(ops["labels"], ops["status"], strict=True)])
    return ops.reset_index(drop=True)


def current_ground_truth(store: Store) -> pd.DataFrame:
    """One row per curated source (sources with no live decision are absent).

    Columns: source_id, labels (list[str]), weights (list[float] | None), status, curator,
    decided_at, event_id, primary_label, original_label, resolved (a lead's resolution stands),
    n_curators (curators with a live opinion). See the module docstring for the rules.
    """
    sql = (resources.files("disfer") / "sql" / "curation_ground_truth.sql").read_text()
    with store.read() as con:
        df = con.execute(sql).df()
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in GROUND_TRUTH_COLUMNS})
    labels = [_as_list(v) for v in df["labels"]]
    weights = [_as_weights(v) for v in df["weights"]]
    return pd.DataFrame({
        "source_id": df["source_id"].astype(int).values,
        "labels": pd.Series(labels, dtype=object).values,
        "weights": pd.Series(weights, dtype=object).values,
        "status": df["status"].astype(object).values,
        "curator": df["curator"].astype(object).values,
        "decided_at": df["decided_at"].values,
        "event_id": df["event_id"].astype(int).values,
        "primary_label": [primary_label(lab, w) for lab, w in zip(labels, weights, strict=True)],
        "original_label": [v if isinstance(v, str) else None for v in df["original_label"]],
        "resolved": df["resolved"].astype(bool).values,
        "n_curators": df["n_curators"].astype(int).values,
    }, columns=GROUND_TRUTH_COLUMNS)


def show_source(store: Store, source_id: int) -> dict:
    """A source's original label, current ground truth (or None) and full event history."""
    with store.read() as con:
        row = con.execute("SELECT source_id, dataset, original_index, original_label, split "
                          "FROM sources WHERE source_id = ?", [int(source_id)]).fetchone()
    if row is None:
        raise ConfigError(f"unknown source {source_id}: no such source_id in {store.path}")
    gt = current_ground_truth(store)
    gt = gt[gt["source_id"] == int(source_id)]
    return {
        "source_id": row[0], "dataset": row[1], "original_index": row[2], "original_label": row[3],
        "split": row[4],
        "ground_truth": None if gt.empty else gt.iloc[0].to_dict(),
        "events": event_log(store, int(source_id)),
    }


# -- agreement between curators -----------------------------------------------------------------
@dataclass
class CuratorAgreement:
    pairs: pd.DataFrame
    """curator_a, curator_b, n_common (sources both decided), agreement (share with the same key),
    kappa (Cohen's kappa over the keys; NaN with fewer than 2 common sources or one category)."""
    disagreements: pd.DataFrame
    """source_id, opinions ({curator: key}), resolved (a lead's resolution stands), resolution."""


def curator_agreement(store: Store) -> CuratorAgreement:
    """Cohen's kappa for every pair of curators on their common sources, and the disputed sources."""
    from sklearn.metrics import cohen_kappa_score

    ops = curator_opinions(store)
    gt = current_ground_truth(store)
    pairs = []
    by_curator = {c: g.set_index("source_id")["key"] for c, g in ops.groupby("curator")}
    for a, b in combinations(sorted(by_curator), 2):
        common = by_curator[a].index.intersection(by_curator[b].index)
        ka, kb = by_curator[a].loc[common], by_curator[b].loc[common]
        agreement = float((ka.values == kb.values).mean()) if len(common) else float("nan")
        kappa = float("nan")
        if len(common) >= 2 and len(set(ka) | set(kb)) > 1:
            kappa = float(cohen_kappa_score(list(ka), list(kb)))
        pairs.append({"curator_a": a, "curator_b": b, "n_common": int(len(common)),
                      "agreement": agreement, "kappa": kappa})
    resolved = gt.set_index("source_id") if not gt.empty else None
    n_keys = ops.groupby("source_id")["key"].nunique()
    rows = []
    for source_id, group in ops[ops["source_id"].isin(n_keys[n_keys > 1].index)].groupby("source_id"):
        res = resolved.loc[source_id] if resolved is not None and source_id in resolved.index else None
        is_resolved = bool(res is not None and res["resolved"])
        rows.append({"source_id": int(source_id),
                     "opinions": dict(zip(group["curator"], group["key"], strict=True)),
                     "resolved": is_resolved,
                     "resolution": decision_key(res["labels"], res["status"]) if is_resolved else None})
    return CuratorAgreement(
        pairs=pd.DataFrame(pairs, columns=["curator_a", "curator_b", "n_common", "agreement", "kappa"]),
        disagreements=pd.DataFrame(rows, columns=["source_id", "opinions", "resolved", "resolution"]),
    )


# -- review queue -------------------------------------------------------------------------------
AUDIT_COLUMNS = ["all_versions_wrong", "n_contradicted", "contradiction", "agreement", "audit_rank"]


def audit_ranking(store: Store) -> pd.DataFrame | None:
    """Per source, from the analysis layer's label audit and agreement: all_versions_wrong (the
    majority misclassifies every voted version), n_contradicted (versions whose majority is not the
    label), contradiction (mean majority share over those versions), agreement (mean P_i over the
    versions) and audit_rank (1 = review first). None while there is nothing to audit (no votes)."""
    try:
        from disfer.analysis import agreement_per_stimulus, label_audit, load_study
        study = load_study(store)
        audit = label_audit(study)
        agree = agreement_per_stimulus(study)
    except ImportError:
        return None
    if agree.empty or not agree["n_votes"].gt(0).any():
        return None
    per = agree[agree["n_votes"] > 0].groupby("source_id")["p_i"].mean().rename("agreement").to_frame()
    con = audit.contradicted.groupby("source_id")["majority_share"].agg(["size", "mean"])
    per["n_contradicted"] = con["size"].reindex(per.index).fillna(0).astype(int)
    per["contradiction"] = con["mean"].reindex(per.index).fillna(0.0)
    per["all_versions_wrong"] = per.index.isin(audit.source_ids)
    per = per.reset_index()
    per["source_id"] = per["source_id"].astype(int)
    per = per.sort_values(["all_versions_wrong", "n_contradicted", "contradiction", "agreement", "source_id"],
                          ascending=[False, False, False, True, True]).reset_index(drop=True)
    per["audit_rank"] = np.arange(1, len(per) + 1)
    return per[["source_id"] + AUDIT_COLUMNS]


def _rank_by_audit(queue: pd.DataFrame, ranking: pd.DataFrame | None) -> pd.DataFrame:
    """Order by the audit ranking; sources it does not cover (no votes) come last, by source_id."""
    if ranking is None or ranking.empty:
        return queue.sort_values("source_id").reset_index(drop=True)
    merged = queue.merge(ranking, on="source_id", how="left")
    merged["_unranked"] = merged["audit_rank"].isna()
    merged = merged.sort_values(["_unranked", "audit_rank", "source_id"]).drop(columns="_unranked")
    return merged.reset_index(drop=True)


def review_queue(store: Store, emotion: str | None = None, status: str | None = None,
                 curator: str | None = None, unreviewed_by: str | None = None) -> pd.DataFrame:
    """Sources to review, ranked by the label audit, with their curation state.

    Filters: `emotion` matches the original label or any current curated label; `status` is a view
    status (confirmed, relabeled, ambiguous, excluded, disputed, uncurated); `curator` keeps the
    sources that curator has a live opinion on; `unreviewed_by` keeps those they have not decided.
    Columns: source_id, original_label, status, labels, curators, plus audit_ranking's columns
    when there are votes to audit.
    """
    if emotion is not None:
        try:
            emotion = parse_emotion_name(emotion)
        except ValueError as err:
            raise ConfigError(f"emotion filter: {err}") from None
    if status is not None and status not in VIEW_STATUSES:
        raise ConfigError(f"unknown status {status!r} (expected one of {', '.join(VIEW_STATUSES)})")
    with store.read() as con:
        sources = con.execute("SELECT source_id, original_label FROM sources "
                              "WHERE source_id IN (SELECT source_id FROM stimuli) "
                              "OR pixels IS NOT NULL ORDER BY source_id").df()
    gt = current_ground_truth(store).set_index("source_id")
    ops = curator_opinions(store)
    curators = ops.groupby("source_id")["curator"].apply(lambda s: sorted(s)).to_dict()
    ids = sources["source_id"].astype(int)
    queue = pd.DataFrame({
        "source_id": ids.values,
        "original_label": sources["original_label"].astype(object).values,
        "status": [gt.at[s, "status"] if s in gt.index else "uncurated" for s in ids],
        "labels": [gt.at[s, "labels"] if s in gt.index else [] for s in ids],
        "curators": [curators.get(s, []) for s in ids],
    })
    if emotion is not None:
        queue = queue[(queue["original_label"] == emotion) | queue["labels"].map(lambda ls: emotion in ls)]
    if status is not None:
        queue = queue[queue["status"] == status]
    if curator is not None:
        queue = queue[queue["curators"].map(lambda cs: curator in cs)]
    if unreviewed_by is not None:
        queue = queue[queue["curators"].map(lambda cs: unreviewed_by not in cs)]
    return _rank_by_audit(queue, audit_ranking(store))


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


# -- what the curator looks at -------------------------------------------------------------------
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
