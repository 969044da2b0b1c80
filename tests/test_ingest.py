"""Ingest of fer2013.csv, image folders and FERPlus counts, on synthetic and real files."""

from __future__ import annotations

import csv
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FER2013_TEST, FERPLUS, require_file

from disfer.data import ingest
from disfer.data.ferplus import FERPLUS_EMOTION_COLUMNS, FERPLUS_HEADER
from disfer.data.image_header import image_size
from disfer.data.ingest import ingest_fer2013, ingest_ferplus, ingest_folder, read_face_image
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


# -- hostile values and images (issue 13) -------------------------------------------------------
GOOD_PIXELS = " ".join(["128"] * 2304)
FERPLUS_LINE = ",".join(FERPLUS_HEADER)


def _refused(store, call, *message: str) -> None:
    before = _sources(store)
    with pytest.raises(InputError) as err:
        call()
    assert all(m in str(err.value) for m in message), str(err.value)
    assert "\n" not in str(err.value)
    assert _sources(store).equals(before)


@pytest.mark.parametrize("body,message", [
    (f"0,{GOOD_PIXELS},Public Test", ["row 2: Usage 'Public Test' cannot be used as a file or folder name"]),
    (f"0,{GOOD_PIXELS},.hidden", ["row 2: Usage '.hidden'"]),
    (f"\u0661,{GOOD_PIXELS},Training", ["row 2: unknown emotion '\u0661'"]),
    (f"0,\u0662 {GOOD_PIXELS[4:]},Training", ["row 2: pixels: '\u0662' is not a whole number"]),
    (f"0,99999999999999999999999 {GOOD_PIXELS[4:]},Training",
     ["row 2: pixels: grey value 99999999999999999999999 outside 0..255"]),
])
def test_fer2013_hostile_values_are_refused(store, tmp_path, body, message):
    path = tmp_path / "f.csv"
    path.write_text(f"emotion,pixels,Usage\n0,{GOOD_PIXELS},Training\n{body}\n".replace("row 2", "row 3"))
    _refused(store, lambda: ingest_fer2013(store, path), *(m.replace("row 2", "row 3") for m in message))


def test_fer2013_with_an_empty_usage_is_fine_and_a_duplicate_column_is_not(store, tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(f"emotion,pixels,Usage\n0,{GOOD_PIXELS},\n")
    assert ingest_fer2013(store, path) == 1
    assert _sources(store)["split"].isna().all()
    path.write_text(f"emotion,pixels,emotion\n0,{GOOD_PIXELS},1\n")
    _refused(store, lambda: ingest_fer2013(store, path, dataset="other"), "row 1: column 'emotion' appears twice")


@pytest.mark.parametrize("row,message", [
    ("Training,fer0.png,\u0661,0,0,0,0,0,0,0,0,0", "column neutral: '\u0661' is not a vote count"),
    ("Training,fer0.png,99999999999,0,0,0,0,0,0,0,0,0", "column neutral: '99999999999' is not a vote count"),
    ("Training,fer0.png,-1,0,0,0,0,0,0,0,0,0", "column neutral: '-1' is not a vote count"),
    ("../up,fer0.png,1,0,0,0,0,0,0,0,0,0", "Usage '../up'"),
    ("Training,fer\x1b0.png,1,0,0,0,0,0,0,0,0,0", "column image name: control character '\\x1b'"),
])
def test_ferplus_hostile_values_are_refused(store, tmp_path, row, message):
    path = tmp_path / "fp.csv"
    path.write_text(f"{FERPLUS_LINE}\nTraining,fer1.png,1,0,0,0,0,0,0,0,0,0\n{row}\n")
    _refused(store, lambda: ingest_ferplus(store, path), "row 3: " + message)


def _png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + b"\x00" * 64)


# Headers that claim a huge image, one per format the folder ingest takes.
BOMBS = {
    "png": _png(20000, 20000),
    "jpeg": (b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
             + b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 20000, 20000, 3) + b"\x00" * 9 + b"\x00" * 64),
    "gif": (b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0, 0, 0) + b"\x21\xf9\x04\x00\x00\x00\x00\x00"
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, 20000, 20000, 0) + b"\x00" * 64),
    "bmp": b"BM" + b"\x00" * 12 + struct.pack("<Iii", 40, 20000, -20000) + b"\x00" * 64,
    "webp": (b"RIFF" + struct.pack("<I", 100) + b"WEBPVP8X" + struct.pack("<I", 10) + b"\x00" * 4
             + (19999).to_bytes(3, "little") * 2 + b"\x00" * 64),
    "tiff-big-endian": (b"MM\x00*" + struct.pack(">IH", 8, 2) + struct.pack(">HHII", 256, 4, 1, 20000)
                        + struct.pack(">HHIHH", 257, 3, 1, 20000, 0) + b"\x00" * 64),
}


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_a_bomb_in_any_format_is_refused_by_its_header(kind):
    assert image_size(BOMBS[kind]) == (20000, 20000)
    with pytest.raises(InputError, match="image is 20000x20000 pixels, above the limit"):
        read_face_image(BOMBS[kind], Path("bomb"))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".webp", ".gif"])
def test_image_size_is_what_decoding_gives(ext):
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    ok, data = cv2.imencode(ext, img)
    assert ok
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    assert image_size(data.tobytes()) == (decoded.shape[1], decoded.shape[0]) == (53, 37)


def test_the_image_limits():
    side = ingest.MAX_IMAGE_SIDE
    for width, height in [(side + 1, 16), (16, side + 1), (4096, 4096)]:
        with pytest.raises(InputError, match=f"image is {width}x{height} pixels"):
            read_face_image(_png(width, height), Path("big.png"))
    # Within the limits the header passes; this one then fails to decode (it has no pixel data).
    with pytest.raises(InputError, match="unreadable image"):
        read_face_image(_png(4032, 3024), Path("photo.png"))
    assert ingest.MAX_IMAGE_PIXELS >= 4032 * 3024


def _tree(root: Path, split: str = "train", name: str = "a.png") -> Path:
    folder = root / split / "happy"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "ok.png"), np.full((48, 48), 90, np.uint8))
    if name != "ok.png":
        (folder / name).write_bytes((folder / "ok.png").read_bytes())
    return root


def test_folder_names_must_be_safe_and_files_small(store, tmp_path, monkeypatch):
    root = _tree(tmp_path / "t1", split="my split")
    _refused(store, lambda: ingest_folder(store, root), "split folder 'my split' cannot be used")
    root = _tree(tmp_path / "t2", name="bad\nname.png")
    _refused(store, lambda: ingest_folder(store, root), "file name 'train/happy/bad\\nname.png' holds a control")
    root = _tree(tmp_path / "t3")
    monkeypatch.setattr(ingest, "MAX_IMAGE_BYTES", 10)
    _refused(store, lambda: ingest_folder(store, root), "bytes, above the limit of 10 for one image")
    monkeypatch.undo()
    assert ingest_folder(store, root) == 2
