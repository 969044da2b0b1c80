"""Curation settings of a study, kept in `study_meta`.

Blind mode (`curation_blind` = '1'): a curator does not see other curators' decisions on a face
until they have decided it themselves, so their agreement (Cohen's kappa) is not inflated by one
copying another. A lead sets it, for the whole study.

Target curators per face (`curation_target`, default 1): how many curators should decide each face
independently. The review queue puts the faces below the target first (`disfer.curation.review_queue`),
so with 2, every face is seen by two curators before anyone sees a third. A lead sets it too.

Both are written with scope 'curation': the dashboard's Study is not reloaded for a setting.
"""

from __future__ import annotations

from disfer.access import Actor, require
from disfer.errors import ConfigError
from disfer.ledger.events import decisions_today_from
from disfer.store import Store

BLIND_KEY = "curation_blind"
TARGET_KEY = "curation_target"
MAX_TARGET = 20  # more curators per face than any lab has: surely a typing error


def blind_mode(store: Store) -> bool:
    """Whether the study's curation is blind (see the module)."""
    with store.read() as con:
        row = con.execute("SELECT value FROM study_meta WHERE key = ?", [BLIND_KEY]).fetchone()
    return row is not None and row[0] == "1"


def set_blind_mode(store: Store, on: bool, lead: str | Actor) -> None:
    """Turn blind mode on or off; a signed-in `lead` (an Actor) needs the lead role."""
    if isinstance(lead, Actor):
        require(lead, "resolve")

    def write(con) -> None:
        con.execute("INSERT OR REPLACE INTO study_meta (key, value) VALUES (?, ?)", [BLIND_KEY, "1" if on else "0"])

    store.write_retrying(write, scope="curation")


def curation_settings(store: Store, curator: str | None = None) -> dict:
    """Both settings and `curator`'s decisions today (`decisions_today`) in one read, since the
    page asks after every decision and a connection costs more than the queries:
    {'blind': bool, 'target': int, 'today': int (0 without a curator)}."""
    with store.read() as con:
        row = con.execute("SELECT value FROM study_meta WHERE key = ?", [BLIND_KEY]).fetchone()
        return {"blind": row is not None and row[0] == "1", "target": target_from(con),
                "today": decisions_today_from(con, curator) if curator else 0}


def target_curators(store: Store) -> int:
    """Curators who should decide each face (see the module); 1 unless a lead set it."""
    with store.read() as con:
        return target_from(con)


def target_from(con) -> int:
    """`target_curators` read through an open connection (the queue reads it with its state)."""
    row = con.execute("SELECT value FROM study_meta WHERE key = ?", [TARGET_KEY]).fetchone()
    return int(row[0]) if row is not None and str(row[0]).isdigit() and int(row[0]) >= 1 else 1


def set_target_curators(store: Store, n, lead: str | Actor) -> int:
    """Set the target number of curators per face (1..MAX_TARGET); a signed-in `lead` (an Actor)
    needs the lead role. Returns the target set."""
    if isinstance(lead, Actor):
        require(lead, "resolve")
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise ConfigError(f"target curators per face: {n!r} is not a whole number") from None
    if not 1 <= n <= MAX_TARGET:
        raise ConfigError(f"target curators per face: {n} is not between 1 and {MAX_TARGET}")

    def write(con) -> None:
        con.execute("INSERT OR REPLACE INTO study_meta (key, value) VALUES (?, ?)", [TARGET_KEY, str(n)])

    store.write_retrying(write, scope="curation")
    return n
