"""The data commands end to end, as a user types them: ingest, build, playlists, export, votes, info."""

from __future__ import annotations

import csv

import cv2
import numpy as np

from disfer.cli import main
from disfer.images import from_blob
from disfer.store import Store


def _disfer(capsys, *argv) -> str:
    assert main(["--quiet", *argv]) == 0
    return capsys.readouterr().out


def test_from_a_fer2013_csv_to_imported_votes(tmp_path, fer2013_csv, capsys):
    db = str(tmp_path / "study.duckdb")
    out = _disfer(capsys, "--db", db, "ingest", "fer2013", str(fer2013_csv(per_emotion=4)))
    assert "ingested 28 faces" in out
    assert "built 210 stimuli" in _disfer(capsys, "--db", db, "build", "--per-class", "3", "--seed", "1")
    assert "210 stimuli in 10 playlists of 21" in _disfer(capsys, "--db", db, "playlists", "--count", "10")

    export = tmp_path / "crowd"
    _disfer(capsys, "--db", db, "export-stimuli", str(export))
    with open(export / "manifest.csv", newline="") as fh:
        manifest = list(csv.DictReader(fh))
    assert list(manifest[0]) == ["stimulus_id", "source_id", "fer_label", "distortion", "level", "param", "playlist"]
    assert len(manifest) == 210 and len(list(export.glob("*.png"))) == 210
    store = Store(db)
    with store.read() as con:
        stored = dict(con.execute("SELECT stimulus_id, pixels FROM stimuli").fetchall())
        playlist = dict(con.execute("SELECT stimulus_id, playlist_id FROM playlists").fetchall())
    for row in manifest[:30]:
        png = cv2.imread(str(export / f"{row['stimulus_id']}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(png, from_blob(stored[row["stimulus_id"]]))
        assert int(row["playlist"]) == playlist[row["stimulus_id"]]
    blur1 = next(r for r in manifest if r["distortion"] == "gaussian_blur" and r["level"] == "1")
    assert blur1["param"] == "0.8" and blur1["fer_label"] in {"anger", "disgust", "fear", "happiness",
                                                                "neutral", "sadness", "surprise"}

    # Two participants answer playlist 1, as a crowd platform would export it.
    votes = tmp_path / "votes.csv"
    first = [r for r in manifest if r["playlist"] == "1"]
    with open(votes, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["participant_id", "stimulus_id", "emotion", "rt_ms", "age"])
        for pid, age in (("w1", 25), ("w2", 52)):
            w.writerows([pid, r["stimulus_id"], r["fer_label"], 900, age] for r in first)
    assert f"imported {2 * len(first)} votes" in _disfer(capsys, "--db", db, "votes", "import", str(votes))

    info = _disfer(capsys, "--db", db, "info")
    lines = dict(line.split(None, 1) for line in info.strip().splitlines())
    assert lines["sources"] == "28" and lines["stimuli"] == "210" and lines["votes"] == str(2 * len(first))
    assert lines["participants"] == "2"
    assert lines["schema_version"] == str(store.schema_version())


def test_build_options_levels_and_all_faces(tmp_path, fer2013_csv, capsys):
    db = str(tmp_path / "s.duckdb")
    _disfer(capsys, "--db", db, "ingest", "fer2013", str(fer2013_csv(per_emotion=2)))
    out = _disfer(capsys, "--db", db, "build", "--per-class", "all", "--levels", "gaussian_blur=2,3",
                  "--levels", "salt_pepper=")
    assert "built 84 stimuli" in out  # 14 faces x (original + 2 blur + 3 noise)
    assert main(["--db", db, "build", "--levels", "motion=1"]) == 2
    assert "unknown distortion 'motion'" in capsys.readouterr().err


def test_ingest_folder_and_ferplus_commands(tmp_path, capsys):
    root = tmp_path / "images"
    for split, emotion in (("train", "happy"), ("test", "neutral")):
        (root / split / emotion).mkdir(parents=True)
        cv2.imwrite(str(root / split / emotion / "x.jpg"), np.full((100, 100, 3), 77, np.uint8))
    db = str(tmp_path / "s.duckdb")
    assert "ingested 2 images" in _disfer(capsys, "--db", db, "ingest", "folder", str(root))
    fp = tmp_path / "fer2013new.csv"
    fp.write_text("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
                  "Training,fer0000000.png,4,0,0,1,3,2,0,0,0,0\nTraining,,0,0,0,0,0,0,0,0,0,10\n")
    assert "counts of 2 images" in _disfer(capsys, "--db", db, "ingest", "ferplus", str(fp))
    info = _disfer(capsys, "--db", db, "info")
    assert "crowd_counts    20" in info and "sources         4" in info
