"""Strict CSV reading (disfer.csvio): numbers, header, control characters, compact columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from disfer.csvio import IdCodes, TextColumn, ascii_real, ascii_whole, open_csv
from disfer.errors import InputError


@pytest.mark.parametrize("text,real,whole", [
    ("1", 1.0, 1), ("-12", -12.0, -12), ("+3", 3.0, 3), (" 7 ", 7.0, 7), ("0.5", 0.5, None),
    (".5", 0.5, None), ("5.", 5.0, None), ("-1.5e3", -1500.0, None), ("2E-2", 0.02, None),
    # What Python's float()/int() also accept, and a CSV user never means:
    ("inf", None, None), ("-Infinity", None, None), ("nan", None, None), ("1e309", None, None),
    ("\u0661", None, None), ("\uff11", None, None), ("0.1_0", None, None), ("1_000", None, None),
    ("0x10", None, None), ("\u00a01", None, None), ("", None, None), ("1e", None, None),
    ("1" * 19, float("1" * 19), None),  # more digits than 64 bits hold: not a whole number here
])
def test_only_plain_ascii_numbers_are_numbers(text, real, whole):
    assert ascii_real(text) == real
    assert ascii_whole(text) == whole


def _write(tmp_path, text: str | bytes):
    path = tmp_path / "f.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _read_all(path):
    header, rows = open_csv(path)
    return header, list(rows)


@pytest.mark.parametrize("content,message", [
    ("a,b,A\n1,2,3\n", "row 1: column 'a' appears twice"),
    ("a,b\n1,2\n3,x\x00y\n", "row 3: column b: control character '\\x00'"),
    ("a,b\n1,\"two\nlines\"\n", "row 2: column b: control character '\\n'"),
    ("a,b\n1,2,\x1b[31m\n", "row 2: column #3: control character '\\x1b'"),
    ("a,b\u2028c\n1,2\n", "row 1: column name"),
    ("a\x00b,c\n1,2\n", "binary file"),
    ("\ufeffa,b\n".encode("utf-16"), "UTF-16"),
    ("", "empty file"),
])
def test_open_csv_refuses_with_the_row(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(InputError) as err:
        _read_all(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_open_csv_reads_a_plain_file_and_unnamed_trailing_columns(tmp_path):
    path = _write(tmp_path, "\ufeffA, B ,,\n1,x y,,\n\n2,\u00e9,,\n")
    header, rows = _read_all(path)
    assert header == ["a", "b", "", ""]
    assert rows == [(2, ["1", "x y", "", ""]), (4, ["2", "\u00e9", "", ""])]


def test_text_column_is_arrow_strings_with_nulls():
    column = TextColumn()
    for value in ["a", None, "h\u00e9llo", "", "\u4e2d"]:
        column.append(value)
    assert column.to_arrow().to_pylist() == ["a", None, "h\u00e9llo", "", "\u4e2d"]
    assert TextColumn().to_arrow().to_pylist() == []


def test_id_codes_agree_with_a_dict():
    rng = np.random.default_rng(0)
    ids = [f"{rng.integers(1, 500)}-{rng.choice(['original', 'gaussian_blur', 'jpeg'])}-{rng.integers(0, 4)}"
           for _ in range(2000)]
    ids = list(dict.fromkeys(ids + ["a", "a-1", "", "\u00e9t\u00e9", "b" * 40]))
    codes = IdCodes(pa.chunked_array([pa.array(ids[:700]), pa.array(ids[700:])]))
    assert len(codes) == len(ids)
    for i, sid in enumerate(ids):
        assert codes.code(sid) == i
        assert codes.ids[i].as_py() == sid
    for absent in ["a-", "a-10", "b" * 41, "b" * 39, "zz", "1-original", "a\x00"]:
        assert codes.code(absent) is None
    assert IdCodes(pa.array([], pa.string())).code("a") is None
