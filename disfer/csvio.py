"""Strict CSV reading, shared by every importer (fer2013, FERPlus, votes, participants, predictions).

A CSV we import is read row by row and each row is checked as it is read, so a bad row stops the
import at once and a huge file is never held whole. What is refused, and why:
- a header naming a column twice: `header.index` finds the first, a dict the last, so the two
  readers of one file would disagree about which column counts;
- a control character (U+0000..U+001F, U+007F..U+009F, U+2028, U+2029) in any field or column
  name: a NUL or a line break inside an id, a split or a name is never meant, and would reach
  file names, logs and the dashboard;
- a number that is not plain ASCII decimal (`ascii_real`, `ascii_whole`): Python's float() and
  int() also read '١' (Arabic-Indic), '１' (full width), '0.1_0', 'inf' and 'nan', which a
  spreadsheet user never means as numbers.
"""

from __future__ import annotations

import csv
import math
import re
from array import array
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from disfer.errors import InputError

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_REAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WHOLE = re.compile(r"[+-]?[0-9]+")


def is_plain_real(text: str) -> bool:
    """Written as a plain ASCII decimal number (sign, digits, point, exponent), finite or not."""
    return _REAL.fullmatch(text.strip(" ")) is not None


def is_plain_whole(text: str) -> bool:
    """Written as plain ASCII digits with an optional sign, however many."""
    return _WHOLE.fullmatch(text.strip(" ")) is not None


def ascii_real(text: str) -> float | None:
    """A finite real number written in plain ASCII (sign, digits, point, exponent), else None."""
    text = text.strip(" ")
    if not _REAL.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def ascii_whole(text: str, digits: int = 18) -> int | None:
    """A whole number written in plain ASCII digits (optionally signed, at most `digits` of
    them, so it fits 64 bits), else None."""
    text = text.strip(" ")
    if not _WHOLE.fullmatch(text) or len(text.lstrip("+-")) > digits:
        return None
    return int(text)


def control_character(text: str) -> str | None:
    """The first control character in `text`, or None."""
    found = _CONTROL.search(text)
    return found.group() if found else None


def _sniff(path: Path) -> None:
    """Refuse a missing, empty or binary file before the CSV reader sees it."""
    if not path.is_file():
        raise InputError(path, "no such file")
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if not head.strip():
        raise InputError(path, "empty file (expected a CSV header line)")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(path, "UTF-16 text; save the file as UTF-8 CSV")
    # A NUL in the header line: a binary file. A NUL further down is reported with its row.
    if b"\x00" in head.split(b"\n", 1)[0]:
        raise InputError(path, "binary file, not a CSV text file")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        # A multi-byte character cut at the 8 KiB boundary is fine; anything earlier is not text.
        if err.start < len(head) - 4:
            raise InputError(path, "not UTF-8 text (binary file?)") from None


def open_csv(path: str | Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(lower-cased header, iterator of (row number, fields)) for a text CSV; row 1 is the header.

    Refuses a missing, empty or binary file, a header naming a column twice, and (as the rows are
    read) a field holding a control character, each with an InputError naming the file and row.
    Blank lines are skipped but counted.
    """
    path = Path(path)
    _sniff(path)
    fh = open(path, newline="", encoding="utf-8-sig")
    reader = csv.reader(fh)
    try:
        header = next(reader)
    except (csv.Error, UnicodeDecodeError) as err:
        fh.close()
        raise InputError(path, f"unreadable header: {err}", row=1) from None
    header = [h.strip().lower() for h in header]
    try:
        _check_header(path, header)
    except InputError:
        fh.close()
        raise

    def rows() -> Iterator[tuple[int, list[str]]]:
        with fh:
            number = 1
            try:
                for fields in reader:
                    number += 1
                    if not fields or (len(fields) == 1 and not fields[0].strip()):
                        continue  # blank line
                    if _CONTROL.search(",".join(fields)):  # one search a row; then find the field
                        i, field = next((i, f) for i, f in enumerate(fields) if _CONTROL.search(f))
                        name = header[i] if i < len(header) and header[i] else f"#{i + 1}"
                        raise InputError(path, f"column {name}: control character "
                                               f"{control_character(field)!r} in {field[:40]!r}", number)
                    yield number, fields
            except (csv.Error, UnicodeDecodeError) as err:
                raise InputError(path, f"unreadable CSV: {err}", row=number + 1) from None

    return header, rows()


def _check_header(path: Path, header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if _CONTROL.search(name):
            raise InputError(path, f"column name {name[:40]!r} holds a control character "
                                   f"{control_character(name)!r}", row=1)
        if name in seen:  # unnamed columns (a trailing comma) may repeat; each reader refuses values there
            raise InputError(path, f"column {name!r} appears twice in the header", row=1)
        if name:
            seen.add(name)


def require_columns(path: Path, header: list[str], needed: tuple[str, ...]) -> dict[str, int]:
    """Column name -> index, or an InputError listing the missing ones."""
    missing = [c for c in needed if c not in header]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}; the header has "
                               f"{', '.join(header) or 'nothing'}", row=1)
    return {name: i for i, name in enumerate(header) if name}


class TextColumn:
    """A growing column of strings kept as Arrow keeps them (UTF-8 bytes and offsets), a few bytes
    a value instead of a Python object each; `to_arrow()` hands the buffers over without a copy."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._offsets = array("q", [0])
        self._valid = bytearray()

    def __len__(self) -> int:
        return len(self._valid)

    def append(self, text: str | None) -> None:
        if text is not None:
            self._data += text.encode("utf-8")
        self._offsets.append(len(self._data))
        self._valid.append(text is not None)

    def to_arrow(self) -> pa.Array:
        """The column as an Arrow large_string array (append no more after this)."""
        valid = np.frombuffer(bytes(self._valid), np.uint8).astype(bool)
        nulls = int(len(valid) - valid.sum())
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
        return pa.Array.from_buffers(pa.large_string(), len(valid),
                                     [bitmap, pa.py_buffer(self._offsets), pa.py_buffer(self._data)],
                                     null_count=nulls)


class IdCodes:
    """A fixed set of ids (the store's stimulus ids, say), each given its index in `ids` as a code.

    Looked up row by row while a file is read, so it must be small: the ids are kept as one
    sorted fixed-width byte array (a few bytes an id; a dict of Python strings takes about 110),
    searched by bisection. `ids` is the Arrow array as given: the dictionary that codes index.
    """

    def __init__(self, ids: pa.Array | pa.ChunkedArray):
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        self.ids = ids.cast(pa.large_string())
        n = len(self.ids)
        offsets = np.frombuffer(self.ids.buffers()[1], np.int64)[self.ids.offset:self.ids.offset + n + 1]
        data = np.frombuffer(self.ids.buffers()[2] or b"", np.uint8)
        lengths = np.diff(offsets)
        self._width = max(int(lengths.max()) if n else 0, 1)
        # Row i of `table` holds id i's bytes, NUL-padded: numpy's own layout for dtype S<width>.
        table = np.zeros((n, self._width), np.uint8)
        table[np.arange(self._width) < lengths[:, None]] = data[offsets[0]:offsets[-1]]
        packed = table.view(f"S{self._width}").ravel()
        self._order = np.argsort(packed, kind="stable").astype(np.int32)
        self._sorted = packed[self._order]

    def __len__(self) -> int:
        return len(self.ids)

    def code(self, text: str) -> int | None:
        """The index of `text` in `ids`, or None when it is not one of them."""
        key = text.encode("utf-8")
        if len(key) > self._width or "\x00" in text:  # numpy's S type ignores trailing NULs
            return None
        i = int(self._sorted.searchsorted(key))
        if i < len(self._sorted) and self._sorted[i] == key:
            return int(self._order[i])
        return None
