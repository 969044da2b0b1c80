"""Stimuli for a crowd platform: PNGs and the manifest, written with the store closed."""

from __future__ import annotations

import csv
from contextlib import contextmanager

import cv2
import numpy as np
import pytest

from disfer.data import stimuli_export
from disfer.data.stimuli_export import MANIFEST_COLUMNS, export_stimuli
from disfer.errors import ConfigError
from disfer.images import from_blob


def test_pngs_are_written_after_the_store_is_closed(built_study, tmp_path, monkeypatch):
    open_now = []
    real_read, real_png = built_study.read, stimuli_export._write_png

    @contextmanager
    def tracked_read():
        with real_read() as con:
            open_now.append(con)
            try:
                yield con
            finally:
                open_now.pop()

    written = []

    def png_with_store_closed(out, name, face):
        assert not open_now, "a store connection is open while PNGs are written"
        written.append(name)
        real_png(out, name, face)

    monkeypatch.setattr(built_study, "read", tracked_read)
    monkeypatch.setattr(stimuli_export, "_write_png", png_with_store_closed)
    manifest = export_stimuli(built_study, tmp_path / "out")
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    assert len(written) == len(rows) == 280
    # Playlist order first (each playlist's positions in order), every PNG the stored face exactly.
    assert [r["playlist"] for r in rows] == sorted((r["playlist"] for r in rows), key=int)
    with built_study.read() as con:
        stored = dict(con.execute("SELECT stimulus_id, pixels FROM stimuli").fetchall())
    for r in rows[::37]:
        png = cv2.imread(str(tmp_path / "out" / f"{r['stimulus_id']}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(png, from_blob(stored[r["stimulus_id"]]))


def test_an_empty_store_writes_nothing(store, tmp_path):
    with pytest.raises(ConfigError, match="no stimuli"):
        export_stimuli(store, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_other_files_stay_and_files_of_the_same_name_are_replaced(built_study, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the platform's own")
    (out / "manifest.csv").write_text("an old manifest")
    export_stimuli(built_study, out)
    assert (out / "notes.txt").read_text() == "the platform's own"
    assert (out / "manifest.csv").read_text().startswith(",".join(MANIFEST_COLUMNS))
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_stored_id_that_is_not_a_file_name_is_refused_before_writing(built_study, tmp_path):
    with built_study.write() as con:
        con.execute("INSERT INTO stimuli SELECT '../../escape', source_id, 'odd', 9, param, seed, pixels "
                    "FROM stimuli WHERE stimulus_id = (SELECT min(stimulus_id) FROM stimuli)")
    with pytest.raises(ConfigError, match="stimulus id '../../escape' cannot be used as a file"):
        export_stimuli(built_study, tmp_path / "out")
    assert not (tmp_path / "out").exists()
