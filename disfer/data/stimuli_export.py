"""Write the stimuli for a crowdsourcing platform: `<stimulus_id>.png` files and `manifest.csv`."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np

from disfer.errors import ConfigError, InputError
from disfer.images import N_PIXELS, from_blob
from disfer.progress import Progress, ProgressFn
from disfer.store import Store

MANIFEST_COLUMNS = ("stimulus_id", "source_id", "fer_label", "distortion", "level", "param", "playlist")
FETCH_ROWS = 4096
# One row per stimulus and playlist it is in (stimuli in no playlist last), pixels last.
_STIMULI_SQL = (
    "SELECT t.stimulus_id, t.source_id, s.original_label, t.distortion, t.level, t.param,"
    " p.playlist_id, t.pixels FROM stimuli t JOIN sources s USING (source_id)"
    " LEFT JOIN playlists p USING (stimulus_id)"
    " ORDER BY p.playlist_id NULLS LAST, p.position, t.source_id, t.distortion, t.level")


def export_stimuli(store: Store, out_dir: str | Path, progress: ProgressFn | None = None) -> Path:
    """Write every stimulus as a lossless 48x48 grey PNG plus the manifest; returns the manifest path.

    Files already in `out_dir` with the same names are overwritten; others are left alone.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    # The store is read first and closed before any file is written, so a slow disk does not keep
    # other writers (the dashboard, a CLI command) waiting; the faces wait in a temporary file, so
    # memory does not grow with the number of stimuli.
    with tempfile.TemporaryFile() as spill:
        rows = _read_stimuli(store, spill)
        out.mkdir(parents=True, exist_ok=True)
        manifest = out / "manifest.csv"
        spill.seek(0)
        with open(manifest, "w", newline="") as fh, \
                Progress(len(rows), f"writing stimuli to {out}", progress, unit="png") as bar:
            writer = csv.writer(fh)
            writer.writerow(MANIFEST_COLUMNS)
            for k, row in enumerate(rows, start=1):
                _write_png(out / f"{row[0]}.png", from_blob(spill.read(N_PIXELS)))
                writer.writerow(_manifest_row(*row))
                if k % FETCH_ROWS == 0 or k == len(rows):
                    bar.update(k - bar.done)
    return manifest


def _read_stimuli(store: Store, spill) -> list[tuple]:
    """The manifest's rows (stimulus_id, source_id, label, distortion, level, param, playlist), in
    file order; each row's 2,304 pixel bytes go to `spill`, in the same order."""
    rows: list[tuple] = []
    with store.read() as con:
        if not con.execute("SELECT count(*) FROM stimuli").fetchall()[0][0]:
            raise ConfigError("the store has no stimuli; run `disfer build` first")
        result = con.execute(_STIMULI_SQL)
        while chunk := result.fetchmany(FETCH_ROWS):
            for *row, pixels in chunk:
                spill.write(from_blob(pixels).tobytes())   # from_blob: refuses a damaged face
                rows.append(tuple(row))
    return rows


def _write_png(path: Path, face: np.ndarray) -> None:
    import cv2

    ok, png = cv2.imencode(".png", np.ascontiguousarray(face))
    if not ok:
        raise InputError(path, "PNG encoding failed")
    path.write_bytes(png.tobytes())


def _manifest_row(stimulus_id, source_id, label, distortion, level, param, playlist) -> list:
    return [stimulus_id, source_id, label or "", distortion, level, "" if param is None else f"{param:g}",
            "" if playlist is None else playlist]
