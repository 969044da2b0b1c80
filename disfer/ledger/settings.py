"""Curation settings of a study, kept in `study_meta`.

Blind mode (`curation_blind` = '1'): a curator does not see other curators' decisions on a face
until they have decided it themselves, so their agreement (Cohen's kappa) is not inflated by one
copying another. A lead sets it, for the whole study.
"""

from __future__ import annotations

from disfer.access import Actor, require
from disfer.store import Store

BLIND_KEY = "curation_blind"


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

    store.write_retrying(write)
