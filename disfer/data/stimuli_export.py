"""Write the stimuli for a crowdsourcing platform: `<stimulus_id>.png` files and `manifest.csv`.

The files go into a folder that may hold other things (a platform's own files): a file of the same
name is replaced, anything else is left alone. Each file is written through `disfer.outfiles`: a
stored id that is not a safe file name is refused before anything is written, and a link planted
at `<id>.png` or `manifest.csv` is replaced, never followed to overwrite what it points to.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np

from disfer import outfiles
from disfer.errors import ConfigError, InputError
from disfer.images import N_PIXELS, from_blob
from disfer.progress import Progress, ProgressFn
from disfer.store import Store

MANIFEST = "manifest.csv"
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
    if out.is_symlink():
        raise ConfigError(f"{out}: the output folder is a symbolic link; give the real folder")
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    # The store is read first and closed before any file is written, so a slow disk does not keep
    # other writers (the dashboard, a CLI command) waiting; the faces wait in a temporary file, so
    # memory does not grow with the number of stimuli.
    with tempfile.TemporaryFile() as spill:
        rows = _read_stimuli(store, spill)
        names = [f"{outfiles.safe_name(row[0], 'stimulus id')}.png" for row in rows]
        outfiles.output_folder(out)
        spill.seek(0)
        # The manifest replaces the old one only once every PNG is written.
        with outfiles.writing(out, MANIFEST, "w", newline="") as fh, \
                Progress(len(rows), f"writing stimuli to {out}", progress, unit="png") as bar:
            writer = csv.writer(fh)
            writer.writerow(MANIFEST_COLUMNS)
            for k, (name, row) in enumerate(zip(names, rows, strict=True), start=1):
                _write_png(out, name, from_blob(spill.read(N_PIXELS)))
                writer.writerow(_manifest_row(*row))
                if k % FETCH_ROWS == 0 or k == len(rows):
                    bar.update(k - bar.done)
    return out / MANIFEST


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


def _write_png(out: Path, name: str, face: np.ndarray) -> None:
    import cv2

    ok, png = cv2.imencode(".png", np.ascontiguousarray(face))
    if not ok:
        raise InputError(out / name, "PNG encoding failed")
    outfiles.write_bytes(out, name, png.tobytes())


def _manifest_row(stimulus_id, source_id, label, distortion, level, param, playlist) -> list:
    return [stimulus_id, source_id, label or "", distortion, level, "" if param is None else f"{param:g}",
            "" if playlist is None else playlist]
