"""The ground truth the ledger adds up to, and each curator's opinion (rules: see the package)."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from disfer.errors import ConfigError
from disfer.ledger.decisions import primary_label
from disfer.ledger.events import as_labels, as_weights, event_log_from
from disfer.store import Store

GROUND_TRUTH_COLUMNS = ["source_id", "labels", "weights", "status", "curator", "decided_at",
                        "event_id", "primary_label", "original_label", "resolved", "n_curators", "key"]
_GROUND_TRUTH_SQL = (resources.files("disfer") / "sql" / "curation_ground_truth.sql").read_text()


def curator_opinions(store: Store) -> pd.DataFrame:
    """Each curator's latest live decision per source (view `curation_opinions`): event_id,
    source_id, curator, decided_at, labels, weights, status, note, key (what two curators must
    share to agree: the sorted labels joined by '+', or 'excluded')."""
    with store.read() as con:
        return opinions_from(con)


def opinions_from(con) -> pd.DataFrame:
    """`curator_opinions` read through an open connection (several reads, one connection)."""
    df = con.execute("SELECT event_id, source_id, curator, decided_at, labels, weights, status, note, key "
                     "FROM curation_opinions ORDER BY event_id").df()
    df["labels"] = df["labels"].map(as_labels)
    df["weights"] = df["weights"].map(as_weights)
    return df


def current_ground_truth(store: Store) -> pd.DataFrame:
    """One row per curated source (sources with no live decision are absent).

    Columns: source_id, labels (list[str]), weights (list[float] | None), status, curator,
    decided_at, event_id, primary_label, original_label, resolved (a lead's resolution stands),
    n_curators (curators with a live opinion), key (as in `curator_opinions`).
    """
    with store.read() as con:
        return ground_truth_from(con)


def ground_truth_from(con) -> pd.DataFrame:
    """`current_ground_truth` read through an open connection (several reads, one connection)."""
    import pandas as pd  # for speed: `disfer curate set` never builds a frame

    df = con.execute(_GROUND_TRUTH_SQL).df()
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in GROUND_TRUTH_COLUMNS})
    labels = [as_labels(v) for v in df["labels"]]
    weights = [as_weights(v) for v in df["weights"]]
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
        "key": df["key"].astype(object).values,
    }, columns=GROUND_TRUTH_COLUMNS)


def show_source(store: Store, source_id: int) -> dict:
    """A source's original label, current ground truth (or None), full event history and, where
    two or more curators decided it, their live opinions (`opinions`: curator, event_id, labels,
    weights, status; by curator; else empty)."""
    # One connection for the three reads: opening one costs more than the queries (the page asks
    # for this after every decision).
    with store.read() as con:
        row = con.execute("SELECT source_id, dataset, original_index, original_label, split "
                          "FROM sources WHERE source_id = ?", [int(source_id)]).fetchone()
        if row is None:
            raise ConfigError(f"unknown source {source_id}: no such source_id in {store.path}")
        gt = ground_truth_from(con)
        events = event_log_from(con, int(source_id))
        gt = gt[gt["source_id"] == int(source_id)]
        # Opinions matter where they differ (a lead's review): not read for every other face.
        opinions = con.execute("SELECT curator, event_id, labels, weights, status FROM curation_opinions "
                               "WHERE source_id = ? ORDER BY curator", [int(source_id)]).fetchall() \
            if not gt.empty and gt.iloc[0]["n_curators"] > 1 else []
    return {
        "source_id": row[0], "dataset": row[1], "original_index": row[2], "original_label": row[3],
        "split": row[4],
        "ground_truth": None if gt.empty else gt.iloc[0].to_dict(),
        "events": events,
        "opinions": [{"curator": c, "event_id": int(e), "labels": as_labels(lab), "weights": as_weights(w),
                      "status": s} for c, e, lab, w, s in opinions],
    }
