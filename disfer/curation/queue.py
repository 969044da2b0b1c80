"""The review queue: the study's sources with their curation state, faces below the study's target
number of curators first (`disfer.ledger.target_curators`), each group in the review ranking's
order (`disfer.analysis.review_ranking`, the one rule the label audit uses too); a curator's
progress through it; and who has a face open (soft locks, `disfer.ledger.locks`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from disfer.analysis import Study, load_study, review_ranking
from disfer.emotions import parse_emotion_name
from disfer.errors import ConfigError
from disfer.ledger import VIEW_STATUSES
from disfer.ledger.ground_truth import ground_truth_from, opinions_from
from disfer.ledger.locks import Mark, held_by_others
from disfer.ledger.settings import target_from
from disfer.store import Store

RANKING_COLUMNS = ["all_versions_wrong", "n_contradicted", "strength", "contradiction", "agreement",
                   "review_rank"]


def _queue_state(store: Store) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    """The study's sources, the ground truth, the opinions and the target, through one connection
    (opening one costs more than these queries; the page asks after every decision)."""
    with store.read() as con:
        # Only the study's faces: a source ingested but never built has no versions to judge by.
        sources = con.execute("SELECT source_id, original_label FROM sources "
                              "WHERE source_id IN (SELECT source_id FROM stimuli) ORDER BY source_id").df()
        return sources, ground_truth_from(con), opinions_from(con), target_from(con)


def review_queue(store: Store, study: Study | None = None, emotion: str | None = None,
                 status: str | None = None, curator: str | None = None,
                 unreviewed_by: str | None = None) -> pd.DataFrame:
    """Sources to review, with their curation state: first the faces below the study's target
    number of curators (fewer curators' live decisions than the target, and no lead resolution),
    then the others; each group in the review ranking's order.

    study: the store's Study (original labels) when the caller holds it already (the dashboard);
    loaded here otherwise. Filters: `emotion` matches the original label or any current curated
    label; `status` is a view status (confirmed, relabeled, ambiguous, excluded, disputed,
    uncurated); `curator` keeps the sources that curator has a live opinion on; `unreviewed_by`
    keeps those they have not decided. Columns: source_id, original_label, status, labels,
    curators, below_target, and the ranking's columns (NaN for sources without votes, which come
    last in their group, in dataset order by label: original label, then source id; before any
    vote, that is the order).
    Only the study's sources (those with versions) are listed.
    """
    if emotion is not None:
        try:
            emotion = parse_emotion_name(emotion)
        except ValueError as err:
            raise ConfigError(f"emotion filter: {err}") from None
    if status is not None and status not in VIEW_STATUSES:
        raise ConfigError(f"unknown status {status!r} (expected one of {', '.join(VIEW_STATUSES)})")
    sources, gt, ops, target = _queue_state(store)
    gt = gt.set_index("source_id")
    curators = ops.groupby("source_id")["curator"].apply(lambda s: sorted(s)).to_dict()
    ids = sources["source_id"].astype(int)
    queue = pd.DataFrame({
        "source_id": ids.values,
        "original_label": sources["original_label"].astype(object).values,
        "status": [gt.at[s, "status"] if s in gt.index else "uncurated" for s in ids],
        "labels": [gt.at[s, "labels"] if s in gt.index else [] for s in ids],
        "curators": [curators.get(s, []) for s in ids],
        "below_target": [len(curators.get(s, [])) < target and not (s in gt.index and gt.at[s, "resolved"])
                         for s in ids],
    })
    if emotion is not None:
        queue = queue[(queue["original_label"] == emotion) | queue["labels"].map(lambda ls: emotion in ls)]
    if status is not None:
        queue = queue[queue["status"] == status]
    if curator is not None:
        queue = queue[queue["curators"].map(lambda cs: curator in cs)]
    if unreviewed_by is not None:
        queue = queue[queue["curators"].map(lambda cs: unreviewed_by not in cs)]
    ranking = review_ranking(study if study is not None else load_study(store))
    merged = queue.merge(ranking[["source_id"] + RANKING_COLUMNS], on="source_id", how="left")
    merged["_done"] = ~merged["below_target"].astype(bool)
    merged["_unranked"] = merged["review_rank"].isna()
    merged["_label"] = merged["original_label"].fillna("~")  # no label: after every emotion
    merged = merged.sort_values(["_done", "_unranked", "review_rank", "_label", "source_id"], kind="stable")
    return merged.drop(columns=["_done", "_unranked", "_label"]).reset_index(drop=True)


def with_locks(queue: pd.DataFrame, marks: dict[str, Mark], curator: str | None) -> pd.DataFrame:
    """The queue with `being_reviewed_by`: the other curators who have each face open (soft locks),
    comma-separated, '' where nobody else has."""
    held = held_by_others(marks, curator)
    return queue.assign(being_reviewed_by=[", ".join(held.get(int(s), [])) for s in queue["source_id"]])


def queue_order(queue: pd.DataFrame) -> str:
    """How the queue is ordered, in words, for the page and the CLI."""
    if queue.empty:
        return "empty"
    ranked = int(queue["review_rank"].notna().sum())
    below = int(queue["below_target"].sum()) if "below_target" in queue else len(queue)
    grouped = (f"; the {below:,} faces below the target number of curators first, each group in that order"
               if 0 < below < len(queue) else "")
    if ranked == 0:
        return ("dataset order by label (no crowd votes on these faces yet, so no audit ranks them): "
                "original label, then source id" + grouped)
    rule = ("the label audit's review order (every version misclassified first, then most "
            "contradicted versions, contradiction strength, low agreement)")
    if ranked < len(queue):
        rule += f"; the {len(queue) - ranked:,} faces without votes last, by label"
    return rule + grouped


@dataclass(frozen=True)
class QueueProgress:
    """Where a curator stands in a queue (the sources it lists)."""

    total: int
    """Sources in the queue."""
    decided: int
    """Sources anyone has a live decision on (status is not 'uncurated')."""
    mine: int
    """Sources this curator has a live decision on (0 without a curator)."""
    below_target: int = 0
    """Sources with fewer curators than the study's target (and no lead resolution)."""

    @property
    def remaining(self) -> int:
        """Sources nobody has decided."""
        return self.total - self.decided

    @property
    def remaining_mine(self) -> int:
        """Sources this curator has not decided."""
        return self.total - self.mine


def queue_progress(queue: pd.DataFrame, curator: str | None = None) -> QueueProgress:
    """Decided and remaining sources of a `review_queue`, everyone's and `curator`'s."""
    decided = int((queue["status"] != "uncurated").sum()) if len(queue) else 0
    mine = int(queue["curators"].map(lambda cs: curator in cs).sum()) if curator and len(queue) else 0
    below = int(queue["below_target"].sum()) if len(queue) else 0
    return QueueProgress(total=int(len(queue)), decided=decided, mine=mine, below_target=below)
