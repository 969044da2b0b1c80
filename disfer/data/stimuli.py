"""Reading stimuli back for display: the stored faces of a few stimuli, and which playlist holds
each stimulus. (Writing them is build.py's and playlists.py's work.)"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from disfer.store import Store, registered


def stimulus_pixels(store: Store, stimulus_ids: Iterable[str]) -> dict[str, bytes]:
    """stimulus_id -> its stored face (2,304 raw bytes), for the stimuli asked for that exist.

    Only those asked for are read: a gallery page shows a few dozen faces, not the whole study.
    """
    wanted = pd.DataFrame({"stimulus_id": pd.Series(list(stimulus_ids), dtype=object)})
    if wanted.empty:
        return {}
    with store.read() as con, registered(con, wanted=wanted):
        rows = con.execute("SELECT s.stimulus_id, s.pixels FROM stimuli s JOIN wanted USING (stimulus_id)"
                           ).fetchall()
    return {sid: bytes(px) for sid, px in rows}


def playlist_membership(store: Store) -> pd.DataFrame:
    """stimulus_id, playlist_id: one row per stimulus placed in a playlist, by stimulus_id."""
    with store.read() as con:
        return con.execute("SELECT stimulus_id, playlist_id FROM playlists ORDER BY stimulus_id").df()
