"""Reading stimuli back for display: the faces asked for, and the playlist of each stimulus."""

from __future__ import annotations

import numpy as np
import pandas as pd
from test_curation import add_sources

from disfer.data.stimuli import playlist_membership, stimulus_pixels
from disfer.images import N_PIXELS


def test_stimulus_pixels_reads_only_the_stimuli_asked_for(store):
    add_sources(store, ["happiness", "anger"])
    with store.read() as con:
        stored = {sid: bytes(px) for sid, px in con.execute("SELECT stimulus_id, pixels FROM stimuli").fetchall()}
    wanted = ["2-gaussian_blur-3", "1-original-0", "9-original-0"]  # the last is not in the store
    faces = stimulus_pixels(store, wanted)
    assert faces == {"2-gaussian_blur-3": stored["2-gaussian_blur-3"], "1-original-0": stored["1-original-0"]}
    assert all(len(px) == N_PIXELS for px in faces.values())
    assert stimulus_pixels(store, iter(wanted[:1])) == {"2-gaussian_blur-3": stored["2-gaussian_blur-3"]}
    assert stimulus_pixels(store, []) == {}


def test_playlist_membership_lists_each_placed_stimulus(store):
    add_sources(store, ["happiness", "anger"])
    assert playlist_membership(store).empty
    placed = pd.DataFrame({"playlist_id": [1, 0, 1], "stimulus_id": ["2-original-0", "1-salt_pepper-2",
                                                                      "1-original-0"], "position": [0, 0, 1]})
    with store.write() as con:
        con.register("placed", placed)
        con.execute("INSERT INTO playlists SELECT playlist_id, stimulus_id, position FROM placed")
    table = playlist_membership(store)
    assert list(table.columns) == ["stimulus_id", "playlist_id"]
    assert list(zip(table["stimulus_id"], table["playlist_id"], strict=True)) == [
        ("1-original-0", 1), ("1-salt_pepper-2", 0), ("2-original-0", 1)]
    assert np.issubdtype(table["playlist_id"].dtype, np.integer)
