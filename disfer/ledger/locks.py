"""Soft locks: which face each curator has open, so two curators do not review one face by accident.

Opening a face writes a mark (curator, face, time; table `curation_locks`, one row per curator, so
opening the next face moves it). A face another curator opened in the last LOCK_MINUTES is
"being reviewed by" them: the queue's next and Skip pass it by, a curator cannot open it, a lead
can (`may_open`). The lock is soft: nothing refuses a decision, and a mark nobody refreshes
(a closed tab) lapses after LOCK_MINUTES.

A mark is written with scope 'marks': one small upsert that moves no cache key, so opening a face
never reloads anything of the dashboard. Times are UTC, taken here, so a test can pass `now`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from disfer.access import Actor, may
from disfer.store import Store

LOCK_MINUTES = 5


@dataclass(frozen=True)
class Mark:
    """A face a curator has open."""

    curator: str
    source_id: int
    opened_at: datetime
    """UTC, naive."""


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _live_marks(con, now: datetime) -> dict[str, Mark]:
    rows = con.execute("SELECT curator, source_id, opened_at FROM curation_locks WHERE opened_at > ?",
                       [now - timedelta(minutes=LOCK_MINUTES)]).fetchall()
    return {c: Mark(c, int(s), t) for c, s, t in rows}


def open_marks(store: Store, now: datetime | None = None) -> dict[str, Mark]:
    """The live marks (opened in the last LOCK_MINUTES), by curator."""
    with store.read() as con:
        return _live_marks(con, now or utc_now())


def mark_open(store: Store, source_id: int, curator: str | Actor, now: datetime | None = None) -> dict[str, Mark]:
    """Record that `curator` has `source_id` open (replacing their previous mark), and return the
    live marks, everyone's, read in the same transaction."""
    name, subject = (curator.email, curator.subject) if isinstance(curator, Actor) else \
        ((curator or "").strip(), "local")
    at = now or utc_now()

    def write(con) -> dict[str, Mark]:
        if name:
            con.execute("INSERT OR REPLACE INTO curation_locks (curator, subject, source_id, opened_at) "
                        "VALUES (?, ?, ?, ?)", [name, subject, int(source_id), at])
        return _live_marks(con, at)

    return store.write_retrying(write, scope="marks")


def held_by_others(marks: dict[str, Mark], curator: str | None) -> dict[int, list[str]]:
    """Faces other curators have open: {source_id: [curator, ...]} (names sorted)."""
    held: dict[int, list[str]] = {}
    for name in sorted(marks):
        if name != curator:
            held.setdefault(marks[name].source_id, []).append(name)
    return held


def may_open(source_id: int, marks: dict[str, Mark], curator: str | None, actor: Actor | None) -> bool:
    """Whether `curator` may open a face: one nobody else holds, one they hold themselves, or any
    face for a lead (`actor` with the review role)."""
    if actor is not None and may(actor.role, "review"):
        return True
    return int(source_id) not in held_by_others(marks, curator)


def next_free(order: list[int], start: int, step: int, skip: set[int]) -> int | None:
    """From position `start` (excluded) in `order`, moving by `step` (+1 next, -1 previous), the
    first face not in `skip`; None when there is none that way."""
    i = start + step
    while 0 <= i < len(order):
        if order[i] not in skip:
            return order[i]
        i += step
    return None
