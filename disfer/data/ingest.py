"""Ingest faces into the store: Kaggle `fer2013.csv`, an image-folder tree, and FERPlus vote counts.

Every ingest validates the whole input first and then writes it in ONE transaction, so a bad row
anywhere leaves the store exactly as it was. The readers stream: each row (each image) is checked
as it is read, so the first bad one stops the ingest at once, and validated faces go to a
temporary file (2,304 bytes a face, plus the original file for the folder ingest) instead of
memory, to be inserted in chunks. CSV rules (control characters, duplicate columns, ASCII
numbers) live in disfer.csvio; a split (`Usage`, a folder name) must be a safe file name.

Image limits of the folder ingest: an image is refused, before it is decoded, when its header
claims more than MAX_IMAGE_SIDE pixels a side or MAX_IMAGE_PIXELS pixels in all, or when the file
is larger than MAX_IMAGE_BYTES. A face needs far fewer, and a small compressed file that claims
20000x20000 pixels (a decompression bomb) would take gigabytes to decode.
"""

from __future__ import annotations

import os
import re
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from disfer.csvio import TextColumn, ascii_whole, control_character, open_csv, require_columns
from disfer.data.build import bulk_insert_settings
from disfer.data.ferplus import FERPLUS_EMOTION_COLUMNS, FERPLUS_HEADER
from disfer.data.image_header import image_size
from disfer.emotions import EMOTIONS, parse_emotion
from disfer.errors import ConfigError, InputError
from disfer.images import N_PIXELS, SIZE
from disfer.outfiles import safe_name
from disfer.progress import Progress, ProgressFn, bar
from disfer.store import Store, registered

CHUNK_ROWS = 4096
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = 4096 * 3072  # a 12-megapixel photo (4032x3024) fits
MAX_IMAGE_BYTES = 128 * 2**20
_GREY = re.compile(r"[+-]?[0-9]+")


def parse_pixels(text: str, path: Path, row: int) -> np.ndarray:
    """2,304 space-separated grey values 0..255 as a uint8 array, or an InputError saying why not.

    Read as 64-bit integers and checked in range before narrowing, so no value wraps around
    (4294967424 is refused, not stored as 128); numpy reads only ASCII digits with an optional sign.
    """
    try:
        values = np.fromstring(text, dtype=np.int64, sep=" ")
    except ValueError:
        bad = next((t for t in text.split() if not _GREY.fullmatch(t)), text[:20])
        raise InputError(path, f"pixels: {bad[:40]!r} is not a whole number", row) from None
    if values.size != N_PIXELS:
        raise InputError(path, f"pixels: expected {N_PIXELS:,} grey values, got {values.size:,}", row)
    outside = (values < 0) | (values > 255)
    if outside.any():
        # The token as written: a value beyond 64 bits was read as the largest one numpy holds.
        bad = text.split()[int(np.argmax(outside))]
        raise InputError(path, f"pixels: grey value {bad[:40]} outside 0..255", row)
    return values.astype(np.uint8)


def split_name(text: str, path: Path, row: int | None = None, what: str = "Usage") -> str | None:
    """A split (a Usage value, a folder name) as stored, or None when empty. Exports make folders
    of it, so it must be a safe file name (disfer.outfiles.safe_name's rule): refused otherwise."""
    text = text.strip()
    if not text:
        return None
    try:
        return safe_name(text, what)
    except ConfigError as err:
        raise InputError(path, str(err), row) from None


def _emotion(text: str, path: Path, row: int) -> str:
    # parse_emotion reads codes with str.isdigit, which also accepts '١' and '²'.
    try:
        if not text.isascii():
            raise ValueError(f"unknown emotion {text!r} (expected one of {', '.join(EMOTIONS)})")
        return parse_emotion(text)
    except ValueError as err:
        raise InputError(path, str(err), row) from None


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
    labels = array("b")  # index into EMOTIONS
    splits: list[str | None] = []
    seen: dict[str, str | None] = {}  # Usage as written -> as stored: few values, checked once each

    # Pass 1: validate every row; spill the pixels to a temporary file so memory stays flat.
    with tempfile.TemporaryFile() as spill, \
            Progress(size, f"checking {path.name}", progress, unit="B") as meter:
        done_bytes = 0
        for row, fields in rows:
            if len(fields) != width:
                raise InputError(path, f"expected {width} fields, got {len(fields)}", row)
            labels.append(EMOTIONS.index(_emotion(fields[i_emotion], path, row)))
            spill.write(parse_pixels(fields[i_pixels], path, row).tobytes())
            usage = fields[i_usage] if i_usage is not None else ""
            if usage not in seen:
                seen[usage] = split_name(usage, path, row)
            splits.append(seen[usage])
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


def _chunks(spill, labels: array, splits: list[str | None], keep, bar: Progress | None = None):
    """Arrow tables of the validated rows (from the spill file) whose index passes `keep`."""
    spill.seek(0)
    for start in range(0, len(labels), CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, len(labels))
        raw = spill.read((stop - start) * N_PIXELS)
        rows = [i for i in range(start, stop) if keep(i)]
        yield pa.table({
            "original_index": pa.array(rows, pa.int32()),
            "original_label": pa.array([EMOTIONS[labels[i]] for i in rows], pa.string()),
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
    """Any image file's bytes as a 48x48 grey uint8 face (alpha dropped, area-resampled).

    The header's size is checked against MAX_IMAGE_SIDE and MAX_IMAGE_PIXELS before decoding.
    """
    import cv2  # heavy: loaded on the first image

    size = image_size(data) if data else None
    if size is None or min(size) < 1:
        raise InputError(path, "unreadable image (corrupt or not a PNG, JPEG, GIF, BMP, WebP or TIFF file)")
    width, height = size
    if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise InputError(path, f"image is {width}x{height} pixels, above the limit of {MAX_IMAGE_SIDE} "
                               f"a side and {MAX_IMAGE_PIXELS:,} in all; not decoded (a face needs far fewer)")
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
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

    Each image is kept as given (`original_image`) and converted to a 48x48 grey face. Faces and
    files wait in a temporary file, not in memory, until the one write transaction.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError(root, "not a folder (expected <split>/<emotion>/*.png|jpg)")
    files = sorted(p for p in root.glob("*/*/*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(root, "no images found under <split>/<emotion>/ (png, jpg, ...)")
    labels, sizes = array("b"), array("q")
    splits: list[str | None] = []
    names = TextColumn()
    with tempfile.TemporaryFile() as spill:
        for file in bar(files, len(files), f"reading {root.name}", progress, unit="file"):
            rel = file.relative_to(root)
            if control_character(rel.as_posix()):  # the path itself could not be printed on one line
                raise InputError(root, f"file name {rel.as_posix()!r} holds a control character")
            split = split_name(rel.parts[0], root, what="split folder")
            if not rel.parts[1].isascii():
                raise InputError(file, f"folder name: unknown emotion {rel.parts[1]!r}")
            try:
                label = parse_emotion(rel.parts[1])
            except ValueError as err:
                raise InputError(file, f"folder name: {err}") from None
            nbytes = file.stat().st_size
            if nbytes > MAX_IMAGE_BYTES:
                raise InputError(file, f"{nbytes:,} bytes, above the limit of {MAX_IMAGE_BYTES:,} for one image")
            data = file.read_bytes()
            spill.write(read_face_image(data, file).tobytes())
            spill.write(data)
            labels.append(EMOTIONS.index(label))
            splits.append(split)
            sizes.append(len(data))
            names.append(rel.as_posix())
        original_names = names.to_arrow()

        def write(con) -> int:
            with registered(con, incoming_names=pa.table({"original_name": original_names})):
                clash = con.execute("SELECT count(*), min(original_name) FROM sources WHERE dataset = ?"
                                    " AND original_name IN (SELECT original_name FROM incoming_names)",
                                    [dataset]).fetchall()[0]
            if clash[0]:
                raise InputError(root / clash[1], f"already ingested as dataset {dataset!r} "
                                                  f"({clash[0]} file(s) of this folder are)")
            offset = int(con.execute("SELECT coalesce(max(original_index) + 1, 0) FROM sources"
                                     " WHERE dataset = ?", [dataset]).fetchall()[0][0])
            reader = pa.RecordBatchReader.from_batches(
                _FOLDER_SCHEMA, _folder_batches(spill, labels, splits, sizes, original_names))
            with bulk_insert_settings(con), registered(con, incoming=reader):
                con.execute(
                    "INSERT INTO sources (source_id, dataset, original_index, original_label, split, pixels,"
                    " original_image, original_name)"
                    " SELECT ? + original_index, ?, ? + original_index, original_label, split, pixels,"
                    "        original_image, original_name FROM incoming",
                    [_next_source_id(con), dataset, offset])
            return len(labels)

        return store.write_retrying(write)


_FOLDER_SCHEMA = pa.schema([("original_index", pa.int32()), ("original_label", pa.string()),
                            ("split", pa.string()), ("pixels", pa.binary()),
                            ("original_image", pa.large_binary()), ("original_name", pa.large_string())])
_BATCH_BYTES = 64 * 2**20


def _folder_batches(spill, labels: array, splits: list[str | None], sizes: array, names: pa.Array):
    """Record batches of the spilled faces and files, at most CHUNK_ROWS rows or about 64 MiB each."""
    spill.seek(0)
    start = 0
    while start < len(labels):
        stop, total = start, 0
        while stop < len(labels) and (stop == start or (stop - start < CHUNK_ROWS
                                                        and total + sizes[stop] <= _BATCH_BYTES)):
            total += sizes[stop]
            stop += 1
        faces, originals = [], []
        for i in range(start, stop):
            faces.append(spill.read(N_PIXELS))
            originals.append(spill.read(sizes[i]))
        yield pa.record_batch([
            pa.array(range(start, stop), pa.int32()),
            pa.array([EMOTIONS[labels[i]] for i in range(start, stop)], pa.string()),
            pa.array(splits[start:stop], pa.string()),
            pa.array(faces, pa.binary()),
            pa.array(originals, pa.large_binary()),
            names.slice(start, stop - start),
        ], schema=_FOLDER_SCHEMA)
        start = stop


# -- FERPlus -----------------------------------------------------------------------------------
# The header is read lower-cased (open_csv), so the columns are looked up lower-cased too.
_FERPLUS_NEEDED = tuple(c.lower() for c in FERPLUS_HEADER)


@dataclass(frozen=True)
class FerplusRows:
    """A validated FERPlus file: per data row (row i = original_index i) its Usage, image name and
    vote counts, one column per FERPLUS_EMOTION_COLUMNS."""

    usages: pa.Array  # string, null where empty
    names: pa.Array  # large_string, null where empty
    counts: np.ndarray  # (N, 10) int32

    def rows_table(self) -> pa.Table:
        return pa.table({"original_index": pa.array(range(len(self.counts)), pa.int32()),
                         "split": self.usages, "original_name": self.names})


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
    count_cols = [(c, cols[c]) for c in _FERPLUS_NEEDED[2:]]
    i_usage, i_name = cols["usage"], cols["image name"]
    width = len(header)
    usages: list[str | None] = []
    seen: dict[str, str | None] = {}  # Usage as written -> as stored: few values, checked once each
    names = TextColumn()
    counts = array("i")
    for row, fields in bar_rows(rows, path, progress):
        if len(fields) != width:
            raise InputError(path, f"expected {width} fields, got {len(fields)}", row)
        counts.extend([_vote_count(fields[i], c, path, row) for c, i in count_cols])
        usage = fields[i_usage]
        if usage not in seen:
            seen[usage] = split_name(usage, path, row)
        usages.append(seen[usage])
        names.append(fields[i_name].strip() or None)
    if not usages:
        raise InputError(path, "no data rows after the header", row=2)
    return FerplusRows(pa.array(usages, pa.string()), names.to_arrow(),
                       np.frombuffer(counts, dtype=np.int32).reshape(-1, len(count_cols)))


_MAX_COUNT = 2**31 - 1


def _vote_count(field: str, column: str, path: Path, row: int) -> int:
    value = ascii_whole(field, digits=10)
    if value is None or not 0 <= value <= _MAX_COUNT:
        raise InputError(path, f"column {column}: {field.strip()[:40]!r} is not a vote count "
                               f"(a whole number >= 0)", row)
    return value


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
        "category": pa.DictionaryArray.from_arrays(np.tile(np.arange(k, dtype=np.int8), len(counts)),
                                                   pa.array(FERPLUS_EMOTION_COLUMNS, pa.string())),
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
