"""Write the stimuli for a crowdsourcing platform: `<stimulus_id>.png` files and `manifest.csv`."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from disfer.errors import ConfigError, InputError
from disfer.images import from_blob
from disfer.progress import Progress, ProgressFn
from disfer.store import Store

MANIFEST_COLUMNS = ("stimulus_id", "source_id", "fer_label", "distortion", "level", "param", "playlist")


def export_stimuli(store: Store, out_dir: str | Path, progress: ProgressFn | None = None) -> Path:
    """Write every stimulus as a lossless 48x48 grey PNG plus the manifest; returns the manifest path.

    Files already in `out_dir` with the same names are overwritten; others are left alone.
    """
    import cv2

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    with store.read() as con:
        total = con.execute("SELECT count(*) FROM stimuli").fetchall()[0][0]
        if not total:
            raise ConfigError("the store has no stimuli; run `disfer build` first")
        out.mkdir(parents=True, exist_ok=True)
        manifest = out / "manifest.csv"
        result = con.execute(
            "SELECT t.stimulus_id, t.source_id, s.original_label, t.distortion, t.level, t.param,"
            " p.playlist_id, t.pixels FROM stimuli t JOIN sources s USING (source_id)"
            " LEFT JOIN playlists p USING (stimulus_id)"
            " ORDER BY p.playlist_id NULLS LAST, p.position, t.source_id, t.distortion, t.level")
        with open(manifest, "w", newline="") as fh, \
                Progress(total, f"writing stimuli to {out}", progress, unit="png") as bar:
            writer = csv.writer(fh)
            writer.writerow(MANIFEST_COLUMNS)
            while rows := result.fetchmany(4096):
                for sid, source_id, label, distortion, level, param, playlist, pixels in rows:
                    ok, png = cv2.imencode(".png", np.ascontiguousarray(from_blob(pixels)))
                    if not ok:
                        raise InputError(out / f"{sid}.png", "PNG encoding failed")
                    (out / f"{sid}.png").write_bytes(png.tobytes())
                    writer.writerow([sid, source_id, label or "", distortion, level,
                                     "" if param is None else f"{param:g}",
                                     "" if playlist is None else playlist])
                bar.update(len(rows))
    return manifest
