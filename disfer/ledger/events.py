"""Appending to the curation ledger (decisions, resolutions, undo) and reading it back.

Writes are short single-statement transactions through `Store.write_retrying`, so many browser
sessions and CLI processes can record decisions at once without losing any. They are written with
scope 'curation': the dashboard's Study (votes, predictions) is not reloaded after a decision.

A lead's review of a disagreement is one event too (`review`): 'accept' copies one curator's live
decision (`accepts` names it), 'fix' records the lead's own labels (a resolution, as `resolve`),
'reject' (status 'rejected') sends the face back: every earlier decision on it stops counting
(view `curation_live`, migration 006), so its curators find it undecided in their queue again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from disfer.access import AccessDenied, Actor, rank, require, signature
from disfer.errors import ConfigError
from disfer.ledger.decisions import validate_decision
from disfer.store import Store

Author = str | Actor  # a name (local use, the CLI) or a signed-in person (hosted mode)


def _signed(author: Author, action: str) -> tuple[str, str]:
    """(name, subject) to record for `author`, after the server-side role check for a signed-in
    person; a plain name is the local user's, recorded with subject 'local'."""
    if isinstance(author, Actor):
        require(author, action)
        return signature(author)
    return (author or "").strip(), "local"  # an empty name stays empty: validation asks for one


def _original_label(con, source_id: int) -> tuple[bool, str | None]:
    row = con.execute("SELECT original_label FROM sources WHERE source_id = ?", [source_id]).fetchone()
    return (row is not None, row[0] if row else None)


REVIEW_OUTCOMES: tuple[str, ...] = ("accept", "fix", "reject")


def _append(store: Store, source_id, labels, weights, status, author: Author, note, role: str,
            review: str | None = None) -> int:
    curator, subject = _signed(author, "review" if review else "resolve" if role == "lead" else "curate")
    # Field checks first (no store needed), then the checks against the source inside the same
    # transaction as the insert, so an unknown source writes nothing.
    validate_decision(source_id, labels, weights, status, curator, note)

    def insert(con) -> int:
        exists, original = _original_label(con, int(source_id))
        if not exists:
            raise ConfigError(f"unknown source {source_id}: no such source_id in {store.path}")
        d = validate_decision(source_id, labels, weights, status, curator, note, original)
        return int(con.execute(
            "INSERT INTO curation_events (source_id, curator, labels, weights, status, note, role, subject, "
            "review) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
            [d.source_id, d.curator, d.labels, d.weights, d.status, d.note, role, subject, review],
        ).fetchone()[0])

    return store.write_retrying(insert, scope="curation")


def record_decision(store: Store, source_id, labels, weights, status, curator: Author, note=None) -> int:
    """Append one curator's decision on a source; returns its event_id. A signed-in `curator`
    (an Actor) needs the curator role."""
    return _append(store, source_id, labels, weights, status, curator, note, role="curator")


def resolve(store: Store, source_id, labels, weights, status, lead: Author, note=None) -> int:
    """Append a lead's resolution: the source's ground truth until the resolution is undone. A
    signed-in `lead` (an Actor) needs the lead role."""
    return _append(store, source_id, labels, weights, status, lead, note, role="lead")


def undo(store: Store, event_id, curator: Author, note=None) -> int:
    """Revert a decision or resolution by appending an 'undo' event; returns the new event_id.
    A signed-in curator may undo their own events; a lead anyone's."""
    author = curator
    curator, subject = _signed(author, "curate")
    if not curator:
        raise ConfigError("a curator name is required")
    try:
        event_id = int(event_id)
    except (TypeError, ValueError):
        raise ConfigError(f"event id {event_id!r} is not an integer") from None

    def insert(con) -> int:
        row = con.execute("SELECT source_id, status, curator FROM curation_events WHERE event_id = ?",
                          [event_id]).fetchone()
        if row is None:
            raise ConfigError(f"unknown curation event {event_id}")
        if isinstance(author, Actor) and row[2] != author.email and rank(author.role) < rank("lead"):
            raise AccessDenied(f"{author.email} may not undo event {event_id} of {row[2]}: "
                               "only its author or a lead may")
        if row[1] == "undo":
            raise ConfigError(f"event {event_id} is itself an undo; record the decision again instead")
        done = con.execute("SELECT event_id FROM curation_events WHERE undoes = ?", [event_id]).fetchone()
        if done is not None:
            raise ConfigError(f"event {event_id} is already undone (by event {done[0]})")
        return int(con.execute(
            "INSERT INTO curation_events (source_id, curator, labels, weights, status, note, undoes, role, "
            "subject) VALUES (?, ?, [], NULL, 'undo', ?, ?, 'curator', ?) RETURNING event_id",
            [row[0], curator, note, event_id, subject],
        ).fetchone()[0])

    return store.write_retrying(insert, scope="curation")


def accept(store: Store, source_id, curator: str, lead: Author, note=None) -> int:
    """A lead accepts `curator`'s live decision on a source as it is: one lead event with its labels,
    weights and status, `accepts` = that decision's event. A signed-in `lead` needs the review role."""
    who, subject = _signed(lead, "review")
    if not who:
        raise ConfigError("a lead name is required")
    source_id, curator = _source_id(source_id), (curator or "").strip()

    def insert(con) -> int:
        row = con.execute("SELECT event_id, labels, weights, status FROM curation_opinions "
                          "WHERE source_id = ? AND curator = ?", [source_id, curator]).fetchone()
        if row is None:
            raise ConfigError(f"source {source_id}: {curator!r} has no live decision to accept")
        return int(con.execute(
            "INSERT INTO curation_events (source_id, curator, labels, weights, status, note, role, subject, "
            "review, accepts) VALUES (?, ?, ?, ?, ?, ?, 'lead', ?, 'accept', ?) RETURNING event_id",
            [source_id, who, row[1], row[2], row[3], _note(note), subject, row[0]],
        ).fetchone()[0])

    return store.write_retrying(insert, scope="curation")


def fix(store: Store, source_id, labels, weights, status, lead: Author, note=None) -> int:
    """A lead's own labels for a face (a resolution, recorded as review 'fix'). A signed-in `lead`
    needs the review role."""
    return _append(store, source_id, labels, weights, status, lead, note, role="lead", review="fix")


def reject(store: Store, source_id, lead: Author, note=None) -> int:
    """A lead sends a face back: one 'rejected' event, after which the face's earlier decisions and
    resolutions no longer count (until the rejection is undone). Refused on a face with no live
    decision. A signed-in `lead` needs the review role."""
    who, subject = _signed(lead, "review")
    if not who:
        raise ConfigError("a lead name is required")
    source_id = _source_id(source_id)

    def insert(con) -> int:
        if con.execute("SELECT count(*) FROM curation_live WHERE source_id = ?", [source_id]).fetchone()[0] == 0:
            raise ConfigError(f"source {source_id}: no live decision to send back")
        return int(con.execute(
            "INSERT INTO curation_events (source_id, curator, labels, weights, status, note, role, subject, "
            "review) VALUES (?, ?, [], NULL, 'rejected', ?, 'lead', ?, 'reject') RETURNING event_id",
            [source_id, who, _note(note), subject],
        ).fetchone()[0])

    return store.write_retrying(insert, scope="curation")


def review(store: Store, source_id, outcome: str, lead: Author, *, curator: str | None = None,
           labels=None, weights=None, status=None, note=None) -> int:
    """One review outcome (`REVIEW_OUTCOMES`), as the page's buttons and `disfer curate review` ask:
    accept (`curator`'s decision), fix (`labels`, `weights`, `status`) or reject."""
    if outcome == "accept":
        if not curator:
            raise ConfigError("accept: whose decision? give the curator")
        return accept(store, source_id, curator, lead, note)
    if outcome == "fix":
        return fix(store, source_id, labels, weights, status, lead, note)
    if outcome == "reject":
        return reject(store, source_id, lead, note)
    raise ConfigError(f"unknown review outcome {outcome!r} (expected one of {', '.join(REVIEW_OUTCOMES)})")


def _source_id(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"source_id {value!r} is not an integer") from None


def _note(note) -> str | None:
    return note.strip() if isinstance(note, str) and note.strip() else None


def last_event_id(store: Store, curator: str | None = None) -> int | None:
    """The newest live event (a live rejection included), optionally of one curator: what undo
    reverts."""
    sql = ("SELECT max(event_id) FROM (SELECT event_id, curator FROM curation_live "
           "UNION ALL SELECT event_id, curator FROM curation_rejections)")
    params: list = []
    if curator:
        sql += " WHERE curator = ?"
        params.append(curator)
    with store.read() as con:
        value = con.execute(sql, params).fetchone()[0]
    return None if value is None else int(value)


def event_summary(store: Store, event_id: int) -> dict | None:
    """One event as a dict (event_id, source_id, curator, role, status, labels, weights, note,
    undoes), or None when there is no such event: what a page says it saved or undid."""
    with store.read() as con:
        row = con.execute("SELECT event_id, source_id, curator, role, status, labels, weights, note, undoes "
                          "FROM curation_events WHERE event_id = ?", [int(event_id)]).fetchone()
    if row is None:
        return None
    keys = ("event_id", "source_id", "curator", "role", "status", "labels", "weights", "note", "undoes")
    out = dict(zip(keys, row, strict=True))
    out["labels"], out["weights"] = as_labels(out["labels"]), as_weights(out["weights"])
    return out


def decisions_today(store: Store, curator: str | None = None) -> int:
    """Decisions and resolutions made today (the store's clock, local date), optionally by one
    curator; undos are not decisions, and an undone decision still took the curator's time."""
    with store.read() as con:
        return decisions_today_from(con, curator)


def decisions_today_from(con, curator: str | None = None) -> int:
    """`decisions_today` read through an open connection (several reads, one connection)."""
    sql = ("SELECT count(*) FROM curation_events WHERE status <> 'undo' "
           "AND CAST(decided_at AS DATE) = CAST(CAST(current_timestamp AS TIMESTAMP) AS DATE)")
    params: list = []
    if curator:
        sql += " AND curator = ?"
        params.append(curator)
    return int(con.execute(sql, params).fetchone()[0])


def event_log(store: Store, source_id: int | None = None) -> pd.DataFrame:
    """Every event, oldest first: event_id, source_id, curator, subject, role, decided_at, labels,
    weights, status, note, undoes, undone_by, review (a lead's 'accept', 'fix', 'reject', else
    None), accepts (the event an 'accept' took)."""
    with store.read() as con:
        return event_log_from(con, source_id)


def event_log_from(con, source_id: int | None = None) -> pd.DataFrame:
    """`event_log` read through an open connection (several reads, one connection)."""
    import pandas as pd  # for speed: `disfer curate set` never builds a frame

    sql = ("SELECT e.event_id, e.source_id, e.curator, e.subject, e.role, e.decided_at, "
           "e.labels, e.weights, e.status, e.note, e.undoes, u.event_id AS undone_by, e.review, e.accepts "
           "FROM curation_events e LEFT JOIN curation_events u ON u.undoes = e.event_id")
    params: list = []
    if source_id is not None:
        sql += " WHERE e.source_id = ?"
        params.append(int(source_id))
    df = con.execute(sql + " ORDER BY e.event_id", params).df()
    for name in ("undoes", "undone_by", "accepts"):
        df[name] = pd.Series([None if pd.isna(v) else int(v) for v in df[name]], index=df.index, dtype=object)
    for name in ("note", "review"):
        df[name] = pd.Series([v if isinstance(v, str) else None for v in df[name]], index=df.index, dtype=object)
    df["labels"] = df["labels"].map(as_labels)
    df["weights"] = df["weights"].map(as_weights)
    return df


def as_labels(value) -> list[str]:
    """A stored label list as a list of str."""

    # DuckDB hands lists back as arrays or lists, and NULL as None, NaN or pd.NA by pandas' mood.
    return [str(v) for v in value] if hasattr(value, "__len__") and not isinstance(value, str) else []


def as_weights(value) -> list[float] | None:
    """A stored weight list as a list of float, or None."""
    return [float(v) for v in value] if hasattr(value, "__len__") and not isinstance(value, str) else None
