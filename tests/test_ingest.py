"""Ingest of fer2013.csv, image folders and FERPlus counts, on synthetic and real files."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from conftest import FER2013_TEST, FERPLUS, require_file

from disfer.data.ferplus import FERPLUS_EMOTION_COLUMNS, FERPLUS_HEADER
from disfer.data.ingest import ingest_fer2013, ingest_ferplus, ingest_folder
from disfer.errors import InputError
from disfer.images import from_blob


def _sources(store):
    with store.read() as con:
        return con.execute("SELECT * FROM sources ORDER BY source_id").df()


def test_fer2013_rows_become_sources_with_canonical_labels(store, fer2013_csv):
    path = fer2013_csv(per_emotion=2, splits=("PublicTest", "Training"))
    assert ingest_fer2013(store, path) == 28
    src = _sources(store)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    codes = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    assert src["original_label"].tolist() == [codes[int(r["emotion"])] for r in rows]
    assert src["split"].tolist() == [r["Usage"] for r in rows]
    assert src["original_index"].tolist() == list(range(28))
    assert src["dataset"].unique().tolist() == ["fer2013"]
    for blob, r in zip(src["pixels"], rows, strict=True):
        assert from_blob(blob).reshape(-1).tolist() == [int(v) for v in r["pixels"].split()]


def test_reingesting_the_same_file_is_refused_and_changes_nothing(store, fer2013_csv):
    path = fer2013_csv(per_emotion=1)
    ingest_fer2013(store, path)
    before = _sources(store)
    with pytest.raises(InputError, match="already in the store"):
        ingest_fer2013(store, path)
    assert _sources(store).equals(before)
    # The same file under another dataset name is a separate set of faces.
    assert ingest_fer2013(store, path, dataset="fer2013_copy") == 7


def test_real_fer2013_test_split_ingests_with_its_label_counts(store):
    path = require_file(FER2013_TEST)
    assert ingest_fer2013(store, path) == 7178
    with store.read() as con:
        per = dict(con.execute("SELECT original_label, count(*) FROM sources GROUP BY 1").fetchall())
        splits = dict(con.execute("SELECT split, count(*) FROM sources GROUP BY 1").fetchall())
        first = con.execute("SELECT pixels FROM sources WHERE original_index = 0").fetchall()[0][0]
    # Figures of the data README (angry 958, disgust 111, ...), in canonical names.
    assert per == {"anger": 958, "disgust": 111, "fear": 1024, "happiness": 1774, "sadness": 1247,
                   "surprise": 831, "neutral": 1233}
    assert splits == {"PublicTest": 3589, "PrivateTest": 3589}
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        row0 = next(reader)
    assert from_blob(first).reshape(-1).tolist() == [int(v) for v in row0[1].split()]


def test_folder_tree_any_size_and_colour_becomes_48x48_grey(store, tmp_path):
    root = tmp_path / "faces"
    rng = np.random.default_rng(1)
    made = {}
    for split, emotion, name, shape in [("train", "happy", "a.png", (48, 48)),
                                        ("train", "angry", "b.jpg", (96, 80, 3)),
                                        ("test", "surprise", "c.png", (224, 224, 4))]:
        folder = root / split / emotion
        folder.mkdir(parents=True)
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        cv2.imwrite(str(folder / name), img)
        made[f"{split}/{emotion}/{name}"] = (folder / name).read_bytes()
    assert ingest_folder(store, root) == 3
    src = _sources(store).set_index("original_name")
    assert set(src.index) == set(made)
    assert src.loc["train/happy/a.png", "original_label"] == "happiness"
    assert src.loc["train/angry/b.jpg", "original_label"] == "anger"
    assert src.loc["test/surprise/c.png", "split"] == "test"
    for name, data in made.items():
        assert bytes(src.loc[name, "original_image"]) == data
        assert from_blob(src.loc[name, "pixels"]).shape == (48, 48)
    # A 48x48 grey PNG is lossless: its pixels are kept exactly.
    png = cv2.imdecode(np.frombuffer(made["train/happy/a.png"], np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(from_blob(src.loc["train/happy/a.png", "pixels"]), png)


def _ferplus_head(tmp_path, n):
    src = require_file(FERPLUS)
    lines = src.read_text().splitlines()[: n + 1]
    path = tmp_path / "fer2013new.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, [line.split(",") for line in lines[1:]]


def test_the_ferplus_format_is_the_real_files():
    with open(require_file(FERPLUS), newline="") as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == FERPLUS_HEADER
    assert FERPLUS_HEADER[2:] == FERPLUS_EMOTION_COLUMNS and len(FERPLUS_EMOTION_COLUMNS) == 10


def test_ferplus_counts_join_by_row_position(store, tmp_path, fer2013_csv):
    fp, rows = _ferplus_head(tmp_path, 60)  # the first 60 FERPlus rows are all Training
    # A fer2013 file of 42 Training rows: FERPlus rows 0..41 join to it, 42..59 become vote-only.
    ingest_fer2013(store, fer2013_csv(per_emotion=6, splits=("Training",)))
    assert ingest_ferplus(store, fp) == 60
    with store.read() as con:
        counts = con.execute(
            "SELECT s.original_index, c.category, c.n FROM crowd_counts c JOIN sources s USING (source_id)"
            " WHERE c.crowd = 'ferplus'").df()
        vote_only = con.execute("SELECT count(*) FROM sources WHERE pixels IS NULL AND original_label IS NULL"
                                " AND dataset = 'fer2013'").fetchall()[0][0]
    assert vote_only == 18
    assert len(counts) == 600
    assert set(counts["category"]) == {"neutral", "happiness", "surprise", "sadness", "anger", "disgust",
                                       "fear", "contempt", "unknown", "NF"}
    table = counts.pivot(index="original_index", columns="category", values="n")
    for i, r in enumerate(rows):
        assert table.loc[i, "neutral"] == int(r[2]) and table.loc[i, "NF"] == int(r[11])


def test_fer2013_after_ferplus_fills_the_vote_only_sources(store, tmp_path, fer2013_csv):
    fp, _ = _ferplus_head(tmp_path, 30)
    ingest_ferplus(store, fp)
    ids_before = _sources(store)["source_id"].tolist()
    ingest_fer2013(store, fer2013_csv(per_emotion=2, splits=("Training",)))  # 14 rows
    src = _sources(store)
    assert src["source_id"].tolist() == ids_before  # joined in place, no new sources
    assert src["pixels"].notna().sum() == 14 and src["original_label"].notna().sum() == 14


def test_ferplus_in_another_order_than_the_faces_is_refused(store, tmp_path, fer2013_csv):
    fp, _ = _ferplus_head(tmp_path, 20)  # Training rows
    ingest_fer2013(store, fer2013_csv(per_emotion=2, splits=("PublicTest",)))
    before = _sources(store)
    with pytest.raises(InputError, match="not in the same order"):
        ingest_ferplus(store, fp)
    assert _sources(store).equals(before)


def test_real_ferplus_file_alone_is_a_crowd_of_ten(store):
    path = require_file(FERPLUS)
    assert ingest_ferplus(store, path) == 35887
    with store.read() as con:
        totals = con.execute("SELECT sum(n) AS t FROM crowd_counts GROUP BY source_id").df()["t"]
        n_sources = con.execute("SELECT count(*) FROM sources WHERE pixels IS NULL").fetchall()[0][0]
    assert n_sources == 35887
    # FERPlus had about 10 taggers per image (a few images have fewer or more recorded votes).
    assert totals.median() == 10
    assert (totals >= 8).mean() > 0.99
