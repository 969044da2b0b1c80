"""Ingest faces into the store: Kaggle `fer2013.csv`, an image-folder tree, and FERPlus vote counts.

Every ingest validates the whole input first and then writes it in ONE transaction, so a bad row
anywhere leaves the store exactly as it was. The fer2013 reader streams: validated pixels go to a
temporary file (2,304 bytes a face) instead of memory, and are inserted in chunks.
"""

from __future__ import annotations

import csv
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from disfer.data.build import bulk_insert_settings
from disfer.data.ferplus import FERPLUS_EMOTION_COLUMNS, FERPLUS_HEADER
from disfer.emotions import parse_emotion
from disfer.errors import InputError
from disfer.images import N_PIXELS, SIZE
from disfer.progress import Progress, ProgressFn, bar
from disfer.store import Store, registered

CHUNK_ROWS = 4096
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


# -- CSV reading shared by every importer ------------------------------------------------------
def open_csv(path: str | Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(lower-cased header, iterator of (row number, fields)) for a text CSV; row 1 is the header.

    Refuses a missing, empty or binary file with an InputError naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if not head.strip():
        raise InputError(path, "empty file (expected a CSV header line)")
    if b"\x00" in head:
        raise InputError(path, "binary file, not a CSV text file")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        # A multi-byte character cut at the 8 KiB boundary is fine; anything earlier is not text.
        if err.start < len(head) - 4:
            raise InputError(path, "not UTF-8 text (binary file?)") from None

    fh = open(path, newline="", encoding="utf-8-sig")
    reader = csv.reader(fh)
    try:
        header = next(reader)
    except (csv.Error, UnicodeDecodeError) as err:
        fh.close()
        raise InputError(path, f"unreadable header: {err}", row=1) from None
    header = [h.strip().lower() for h in header]

    def rows() -> Iterator[tuple[int, list[str]]]:
        with fh:
            number = 1
            try:
                for fields in reader:
                    number += 1
                    if not fields or (len(fields) == 1 and not fields[0].strip()):
                        continue  # blank line
                    yield number, fields
            except (csv.Error, UnicodeDecodeError) as err:
                raise InputError(path, f"unreadable CSV: {err}", row=number + 1) from None

    return header, rows()


def require_columns(path: Path, header: list[str], needed: tuple[str, ...]) -> dict[str, int]:
    missing = [c for c in needed if c not in header]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}; the header has "
                               f"{', '.join(header) or 'nothing'}", row=1)
    return {name: i for i, name in enumerate(header)}


def parse_pixels(text: str, path: Path, row: int) -> np.ndarray:
    """2,304 space-separated grey values 0..255 as a uint8 array, or an InputError saying why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            values = np.fromstring(text, dtype=np.int32, sep=" ")
    except (ValueError, DeprecationWarning):
        bad = next((t for t in text.split() if not t.lstrip("-").isdigit()), text[:20])
        raise InputError(path, f"pixels: {bad!r} is not a whole number", row) from None
    if values.size != N_PIXELS:
        raise InputError(path, f"pixels: expected {N_PIXELS:,} grey values, got {values.size:,}", row)
    if values.min() < 0 or values.max() > 255:
        bad = int(values[(values < 0) | (values > 255)][0])
        raise InputError(path, f"pixels: grey value {bad} outside 0..255", row)
    return values.astype(np.uint8)


def _next_source_id(con) -> int:
    return int(con.execute("SELECT coalesce(max(source_id), 0) + 1 FROM sources").fetchall()[0][0])


# -- fer2013.csv -----------------------------------------------------------------------------
def ingest_fer2013(store: Store, path: str | Path, progress: ProgressFn | None = None,
                   dataset: str = "fer2013") -> int:
    """Ingest a Kaggle-format `emotion,pixels[,Usage]` file; returns the number of faces added.

    Row i of the data (0-based, header excluded) becomes `original_index` i of `dataset`. Vote-only
    sources that a FERPlus ingest created for the same rows receive their pixels and labels.
    """
    path = Path(path)
    header, rows = open_csv(path)
    cols = require_columns(path, header, ("emotion", "pixels"))
    i_emotion, i_pixels, i_usage = cols["emotion"], cols["pixels"], cols.get("usage")
    width = len(header)
    size = path.stat().st_size
    labels: list[str] = []
    splits: list[str | None] = []

    # Pass 1: validate every row; spill the pixels to a temporary file so memory stays flat.
    with tempfile.TemporaryFile() as spill, \
            Progress(size, f"checking {path.name}", progress, unit="B") as meter:
        done_bytes = 0
        for row, fields in rows:
            if len(fields) != width:
                raise InputError(path, f"expected {width} fields, got {len(fields)}", row)
            try:
                labels.append(parse_emotion(fields[i_emotion]))
            except ValueError as err:
                raise InputError(path, str(err), row) from None
            spill.write(parse_pixels(fields[i_pixels], path, row).tobytes())
            usage = fields[i_usage].strip() if i_usage is not None else ""
            splits.append(usage or None)
            line_bytes = len(fields[i_pixels]) + 16
            done_bytes += line_bytes
            if len(labels) % 512 == 0:
                meter.update(min(done_bytes, size) - meter.done)
        meter.update(max(size - meter.done, 0))
        if not labels:
            raise InputError(path, "no data rows after the header", row=2)

        # Pass 2: one transaction. New rows stream through ONE insert (flat memory, see
        # disfer.data.build.bulk_insert_settings); rows that fill FERPlus vote-only sources are updated.
        def write(con) -> int:
            _refuse_ingested_rows(con, path, dataset, len(labels))
            next_id = _next_source_id(con)
            vote_only = {r[0] for r in con.execute(
                "SELECT original_index FROM sources WHERE dataset = ? AND pixels IS NULL", [dataset]).fetchall()}
            if vote_only:
                for table in _chunks(spill, labels, splits, keep=lambda i: i in vote_only):
                    _fill_vote_only(con, table, dataset)
            with bulk_insert_settings(con), \
                    Progress(len(labels), f"storing {path.name}", progress, unit="face") as bar2:
                batches = (t.to_batches()[0] for t in _chunks(spill, labels, splits, bar=bar2,
                                                                keep=lambda i: i not in vote_only)
                           if t.num_rows)
                reader = pa.RecordBatchReader.from_batches(_SOURCE_SCHEMA, batches)
                with registered(con, incoming=reader):
                    con.execute(
                        "INSERT INTO sources (source_id, dataset, original_index, original_label, split, pixels)"
                        " SELECT ? + original_index, ?, original_index, original_label, split, pixels"
                        " FROM incoming", [next_id, dataset])
            return len(labels)

        return store.write_retrying(write)


_SOURCE_SCHEMA = pa.schema([("original_index", pa.int32()), ("original_label", pa.string()),
                            ("split", pa.string()), ("pixels", pa.binary())])


def _chunks(spill, labels: list[str], splits: list[str | None], keep, bar: Progress | None = None):
    """Arrow tables of the validated rows (from the spill file) whose index passes `keep`."""
    spill.seek(0)
    for start in range(0, len(labels), CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, len(labels))
        raw = spill.read((stop - start) * N_PIXELS)
        rows = [i for i in range(start, stop) if keep(i)]
        yield pa.table({
            "original_index": pa.array(rows, pa.int32()),
            "original_label": pa.array([labels[i] for i in rows], pa.string()),
            "split": pa.array([splits[i] for i in rows], pa.string()),
            "pixels": pa.array([raw[(i - start) * N_PIXELS:(i - start + 1) * N_PIXELS] for i in rows],
                               pa.binary()),
        }, schema=_SOURCE_SCHEMA)
        if bar is not None:
            bar.update(stop - start)


def _refuse_ingested_rows(con, path: Path, dataset: str, n_rows: int) -> None:
    clash = con.execute(
        "SELECT count(*), min(original_index) FROM sources"
        " WHERE dataset = ? AND original_index < ? AND pixels IS NOT NULL",
        [dataset, n_rows]).fetchall()[0]
    if clash[0]:
        raise InputError(path, f"{clash[0]:,} of its rows are already in the store as dataset "
                               f"{dataset!r} (first: row index {clash[1]}); use a new store or "
                               f"--dataset NAME for a different file")


def _fill_vote_only(con, table: pa.Table, dataset: str) -> None:
    """Give vote-only sources (made by a FERPlus ingest) these rows' faces and labels."""
    with registered(con, incoming=table):
        con.execute(
            "UPDATE sources SET original_label = i.original_label, split = coalesce(i.split, sources.split),"
            " pixels = i.pixels FROM incoming i"
            " WHERE sources.dataset = ? AND sources.original_index = i.original_index", [dataset])


# -- image folder ------------------------------------------------------------------------------
def read_face_image(data: bytes, path: Path) -> np.ndarray:
    """Any image file's bytes as a 48x48 grey uint8 face (alpha dropped, area-resampled)."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if arr is None:
        raise InputError(path, "unreadable image (corrupt or not an image file)")
    if arr.dtype != np.uint8:  # 16-bit PNG and friends
        arr = cv2.convertScaleAbs(arr, alpha=255.0 / max(float(arr.max()), 1.0))
    if arr.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if arr.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        arr = cv2.cvtColor(arr, code)
    if arr.shape != (SIZE, SIZE):
        arr = cv2.resize(arr, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(arr, dtype=np.uint8)


def ingest_folder(store: Store, path: str | Path, progress: ProgressFn | None = None,
                  dataset: str = "folder") -> int:
    """Ingest a `<split>/<emotion>/*.png|jpg` tree (the Kaggle image edition); returns faces added.

    Each image is kept as given (`original_image`) and converted to a 48x48 grey face.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError(root, "not a folder (expected <split>/<emotion>/*.png|jpg)")
    files = sorted(p for p in root.glob("*/*/*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(root, "no images found under <split>/<emotion>/ (png, jpg, ...)")
    records = []
    for number, file in enumerate(bar(files, len(files), f"reading {root.name}", progress, unit="file")):
        rel = file.relative_to(root)
        try:
            label = parse_emotion(rel.parts[1])
        except ValueError as err:
            raise InputError(file, f"folder name: {err}") from None
        data = file.read_bytes()
        face = read_face_image(data, file)
        records.append((number, label, rel.parts[0], face.tobytes(), data, rel.as_posix()))

    table = pa.table({
        "original_index": pa.array([r[0] for r in records], pa.int32()),
        "original_label": pa.array([r[1] for r in records], pa.string()),
        "split": pa.array([r[2] for r in records], pa.string()),
        "pixels": pa.array([r[3] for r in records], pa.binary()),
        "original_image": pa.array([r[4] for r in records], pa.binary()),
        "original_name": pa.array([r[5] for r in records], pa.string()),
    })

    def write(con) -> int:
        names = con.execute("SELECT original_name FROM sources WHERE dataset = ? AND original_name IN"
                            " (SELECT unnest(?::TEXT[]))", [dataset, table["original_name"].to_pylist()]
                            ).fetchall()
        if names:
            raise InputError(root / names[0][0], f"already ingested as dataset {dataset!r} "
                                                 f"({len(names)} file(s) of this folder are)")
        offset = int(con.execute("SELECT coalesce(max(original_index) + 1, 0) FROM sources WHERE dataset = ?",
                                 [dataset]).fetchall()[0][0])
        with registered(con, incoming=table):
            con.execute(
                "INSERT INTO sources (source_id, dataset, original_index, original_label, split, pixels,"
                " original_image, original_name)"
                " SELECT ? + original_index, ?, ? + original_index, original_label, split, pixels,"
                "        original_image, original_name FROM incoming ORDER BY original_index",
                [_next_source_id(con), dataset, offset])
        return len(records)

    return store.write_retrying(write)


# -- FERPlus -----------------------------------------------------------------------------------
# The header is read lower-cased (open_csv), so the columns are looked up lower-cased too.
_FERPLUS_NEEDED = tuple(c.lower() for c in FERPLUS_HEADER)


@dataclass(frozen=True)
class FerplusRows:
    """A validated FERPlus file: per data row (row i = original_index i) its Usage, image name and
    vote counts, one column per FERPLUS_EMOTION_COLUMNS."""

    usages: list[str | None]
    names: list[str | None]
    counts: np.ndarray  # (N, 10) int32

    def rows_table(self) -> pa.Table:
        return pa.table({"original_index": pa.array(range(len(self.counts)), pa.int32()),
                         "split": pa.array(self.usages, pa.string()),
                         "original_name": pa.array(self.names, pa.string())})


def ingest_ferplus(store: Store, path: str | Path, progress: ProgressFn | None = None,
                   dataset: str = "fer2013") -> int:
    """Ingest FERPlus `fer2013new.csv` vote counts as crowd 'ferplus'; returns the rows stored.

    Row i joins to the FER-2013 source with `original_index` i (the files share their order).
    Rows without such a source become vote-only sources (no pixels, no label) that a later
    `ingest fer2013` of the full file fills in. A Usage that contradicts the joined face's split
    means the files are not in the same order, and the ingest is refused.
    """
    path = Path(path)
    fp = read_ferplus(path, progress)

    def write(con) -> int:
        _refuse_second_ferplus(con, path)
        with registered(con, fp_rows=fp.rows_table()):
            _refuse_other_order(con, path, dataset)
            _add_vote_only_sources(con, dataset)
            ids = con.execute(
                "SELECT s.source_id FROM fp_rows f JOIN sources s"
                " ON s.dataset = ? AND s.original_index = f.original_index ORDER BY f.original_index",
                [dataset]).fetchnumpy()["source_id"]
        _insert_ferplus_counts(con, ids, fp.counts)
        return len(fp.counts)

    return store.write_retrying(write)


def read_ferplus(path: Path, progress: ProgressFn | None = None) -> FerplusRows:
    """Every row of a FERPlus file, validated (an InputError names the first bad one)."""
    header, rows = open_csv(path)
    cols = require_columns(path, header, _FERPLUS_NEEDED)
    width = len(header)
    usages: list[str | None] = []
    names: list[str | None] = []
    counts: list[list[int]] = []
    for row, fields in bar_rows(rows, path, progress):
        if len(fields) != width:
            raise InputError(path, f"expected {width} fields, got {len(fields)}", row)
        counts.append([_vote_count(fields[cols[c]], c, path, row) for c in _FERPLUS_NEEDED[2:]])
        usages.append(fields[cols["usage"]].strip() or None)
        names.append(fields[cols["image name"]].strip() or None)
    if not counts:
        raise InputError(path, "no data rows after the header", row=2)
    return FerplusRows(usages, names, np.asarray(counts, dtype=np.int32))


def _vote_count(field: str, column: str, path: Path, row: int) -> int:
    text = field.strip()
    if not text.isdigit():
        raise InputError(path, f"column {column}: {text!r} is not a vote count (a whole number >= 0)", row)
    return int(text)


def _refuse_second_ferplus(con, path: Path) -> None:
    done = con.execute("SELECT count(*) FROM crowd_counts WHERE crowd = 'ferplus'").fetchall()[0][0]
    if done:
        raise InputError(path, f"the store already holds FERPlus counts ({done:,} rows); use a new store")


def _refuse_other_order(con, path: Path, dataset: str) -> None:
    """A Usage that contradicts the joined face's split: the files are not in the same order."""
    clashes = con.execute(
        "SELECT f.original_index, f.split, s.split FROM fp_rows f JOIN sources s"
        " ON s.dataset = ? AND s.original_index = f.original_index"
        " WHERE f.split IS NOT NULL AND s.split IS NOT NULL AND f.split <> s.split"
        " ORDER BY f.original_index LIMIT 1", [dataset]).fetchall()
    if clashes:
        bad = clashes[0]
        raise InputError(path, f"Usage {bad[1]!r} contradicts the FER-2013 face at row index "
                               f"{bad[0]} (split {bad[2]!r}): the files are not in the same "
                               f"order, so they cannot be joined", row=int(bad[0]) + 2)


def _add_vote_only_sources(con, dataset: str) -> None:
    """Sources without pixels or label for the rows no FER-2013 face matches (yet)."""
    con.execute(
        "INSERT INTO sources (source_id, dataset, original_index, split, original_name)"
        " SELECT ? + row_number() OVER (ORDER BY f.original_index) - 1, ?, f.original_index,"
        "        f.split, f.original_name"
        " FROM fp_rows f WHERE NOT EXISTS (SELECT 1 FROM sources s"
        "   WHERE s.dataset = ? AND s.original_index = f.original_index)",
        [_next_source_id(con), dataset, dataset])


def _insert_ferplus_counts(con, source_ids: np.ndarray, counts: np.ndarray) -> None:
    """The (N, 10) counts as crowd_counts rows, the category named as FERPlus's column."""
    k = len(FERPLUS_EMOTION_COLUMNS)
    long = pa.table({
        "source_id": pa.array(np.repeat(source_ids, k).astype(np.int32)),
        "category": pa.array(list(FERPLUS_EMOTION_COLUMNS) * len(counts), pa.string()),
        "n": pa.array(counts.reshape(-1)),
    })
    with registered(con, fp_counts=long):
        con.execute("INSERT INTO crowd_counts (crowd, source_id, category, n)"
                    " SELECT 'ferplus', source_id, category, n FROM fp_counts")


def bar_rows(rows, path: Path, progress: ProgressFn | None):
    """Rows with a progress bar over the file's size (FERPlus rows are about 40 bytes each)."""
    size = max(os.path.getsize(path), 1)
    with Progress(size, f"reading {path.name}", progress, unit="B") as meter:
        for row, fields in rows:
            yield row, fields
            if row % 1024 == 0:
                meter.update(min(row * 40, size) - meter.done)
