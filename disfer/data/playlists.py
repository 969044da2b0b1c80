"""Split the stimuli into playlists for the crowd study.

Constraints (the paper's 21 playlists of 40): every stimulus is in exactly one playlist, no playlist
holds two versions of one face, and each playlist holds as equal as possible numbers of each
emotion and of each distortion condition.

Construction, a cyclic Latin-square rotation that guarantees all three:
1. Order the N faces so emotions are spread evenly (stride order: the r-th of n faces of an
   emotion sits at (r + 0.5) / n), shuffled within each emotion by the seed.
2. Cut that order into P consecutive blocks of near-equal size (block of position k = k * P // N).
3. Version j (of C conditions, C <= P) of a face in block b goes to playlist (b + j) mod P.
A face's C versions land in C different playlists (distinct j mod P). Playlist p receives block
p - j for condition j: one block per condition, so condition counts differ by at most one, and
the C blocks are cyclically consecutive, a contiguous run of the stride order, so every emotion
appears in proportion to its share, within one.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.store import Store, registered


def assign_playlists(stimuli: pd.DataFrame, count: int, seed: int = 0) -> pd.DataFrame:
    """Pure assignment: `stimuli` (stimulus_id, source_id, distortion, level, label) ->
    (playlist_id 1..count, stimulus_id, position 1..size) sorted by playlist and position."""
    if count < 1:
        raise ConfigError(f"--count must be at least 1, not {count}")
    rng = np.random.default_rng(seed)
    conds = sorted(set(zip(stimuli["distortion"], stimuli["level"], strict=True)))
    if len(conds) > count:
        raise ConfigError(f"each face has {len(conds)} versions, so at least {len(conds)} playlists "
                          f"are needed to keep two versions of a face apart (got --count {count})")

    faces = stimuli.drop_duplicates("source_id")[["source_id", "label"]]
    label_rank = {e: i for i, e in enumerate(EMOTIONS)}
    keyed = []
    for label, group in faces.groupby("label", dropna=False, sort=False):
        ids = rng.permutation(group["source_id"].to_numpy())
        rank = label_rank.get(label, len(EMOTIONS))
        keyed.extend(((r + 0.5) / len(ids), rank, int(sid)) for r, sid in enumerate(ids))
    order = [sid for _, _, sid in sorted(keyed)]
    n = len(order)
    block = {sid: k * count // n for k, sid in enumerate(order)}

    cond_index = {conds[i]: j for j, i in enumerate(rng.permutation(len(conds)))}
    relabel = rng.permutation(count) + 1  # playlist numbers carry no meaning about the design
    out = stimuli[["stimulus_id", "source_id", "distortion", "level"]].copy()
    raw = [(block[s] + cond_index[(d, lv)]) % count
           for s, d, lv in zip(out["source_id"], out["distortion"], out["level"], strict=True)]
    out["playlist_id"] = relabel[np.asarray(raw, dtype=np.int64)]
    out["_shuffle"] = rng.random(len(out))
    out = out.sort_values(["playlist_id", "_shuffle"]).reset_index(drop=True)
    out["position"] = out.groupby("playlist_id").cumcount() + 1
    return out[["playlist_id", "stimulus_id", "position"]]


def check_playlists(playlists: pd.DataFrame, stimuli: pd.DataFrame) -> None:
    """Raise AssertionError if a constraint does not hold (run on every assignment written)."""
    df = playlists.merge(stimuli, on="stimulus_id", validate="one_to_one")
    assert len(df) == len(stimuli), "a stimulus is missing from the playlists"
    assert not df.duplicated(["playlist_id", "source_id"]).any(), "a playlist repeats a face"


def make_playlists(store: Store, count: int = 21, size: int | None = 40, seed: int = 0) -> pd.DataFrame:
    """Assign every stimulus to one of `count` playlists (replacing earlier playlists).

    `size`, when given, must equal the number of stimuli / count; None lets sizes follow from the
    stimuli (differing by at most one).
    """
    with store.read() as con:
        stimuli = con.execute(
            "SELECT t.stimulus_id, t.source_id, t.distortion, t.level, s.original_label AS label"
            " FROM stimuli t JOIN sources s USING (source_id) ORDER BY t.stimulus_id").df()
    if stimuli.empty:
        raise ConfigError("the store has no stimuli; run `disfer build` first")
    if size is not None and size * count != len(stimuli):
        raise ConfigError(f"{len(stimuli):,} stimuli do not fill {count} playlists of {size} "
                          f"({count * size:,}); choose --count and --size with count x size = "
                          f"{len(stimuli):,}, or leave --size out")
    playlists = assign_playlists(stimuli, count, seed)
    check_playlists(playlists, stimuli)

    table = pa.Table.from_pandas(playlists, preserve_index=False)

    def write(con) -> None:
        con.execute("DELETE FROM playlists")
        with registered(con, new_playlists=table):
            con.execute("INSERT INTO playlists (playlist_id, stimulus_id, position)"
                        " SELECT playlist_id, stimulus_id, position FROM new_playlists")
        con.execute("INSERT OR REPLACE INTO study_meta VALUES ('playlists', ?)",
                    [json.dumps({"count": count, "size": size, "seed": seed})])

    store.write_retrying(write)
    return playlists
