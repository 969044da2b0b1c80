"""Import the crowd study's votes, as exported by a crowdsourcing platform.

Votes file: `participant_id,stimulus_id,emotion[,rt_ms][,answered_at]`; any further column (age,
gender, country, ...) is a participant attribute. An optional participants file holds
`participant_id` plus attribute columns. Participants are created on first sight with crowd 'study'.

The file is read row by row, each row checked as it is read (disfer.csvio's rules, plus: a known
stimulus, an emotion, a finite `rt_ms` >= 0, an ISO `answered_at` within the calendar, finite
numeric attributes), and kept as compact columns: integer codes for participants, stimuli and
emotions, 64-bit numbers for times, so a big file costs about 35 bytes a vote. Duplicate votes are
found after the last row, with one sort. Everything is written in one transaction, or nothing.
"""

from __future__ import annotations

import json
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from disfer.csvio import (
    IdCodes,
    ascii_real,
    ascii_whole,
    is_plain_real,
    is_plain_whole,
    open_csv,
    require_columns,
)
from disfer.emotions import EMOTIONS, parse_emotion_name
from disfer.errors import InputError
from disfer.store import Store, registered

VOTE_COLUMNS = ("participant_id", "stimulus_id", "emotion")
OPTIONAL_COLUMNS = ("rt_ms", "answered_at")
_NO_TIME = np.iinfo(np.int64).min  # answered_at left empty
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FIRST_MICROS = (datetime.min - _EPOCH) // _MICROSECOND
_LAST_MICROS = (datetime.max - _EPOCH) // _MICROSECOND
_NON_FINITE = {"nan", "inf", "infinity"}


def _attribute_value(text: str, name: str, path: Path, row: int | None) -> object:
    """'34' -> 34, '0.5' -> 0.5, anything else stays text, so ages and scores compare as numbers.

    Only plain ASCII numbers are numbers ('١' and '0.1_0' stay text); a run of more than 18
    digits stays text too (an id, not a quantity). 'nan', 'inf' and numbers too large for a double
    are refused: JSON has no such values, so they would be stored as invalid JSON.
    """
    if is_plain_real(text):
        whole = ascii_whole(text)
        if whole is not None:
            return whole
        if is_plain_whole(text):
            return text
        real = ascii_real(text)
        if real is not None:
            return real
    elif text.lower().lstrip("+-") not in _NON_FINITE:
        return text
    raise InputError(path, f"{name} {text[:40]!r} is not a finite number (leave the field empty "
                           "where there is no value)", row)


def _attributes(fields: list[str], extra: list[tuple[str, int]], path: Path, row: int | None) -> dict:
    attrs = {}
    for name, i in extra:
        text = fields[i].strip()
        if not text:
            continue
        if not name:
            raise InputError(path, f"column {i + 1} has no name in the header but holds {text[:40]!r}", row)
        attrs[name] = _attribute_value(text, name, path, row)
    return attrs


def _merge_attributes(into: dict[str, dict], pid: str, attrs: dict, path: Path, row: int | None) -> None:
    known = into.setdefault(pid, {})
    for key, value in attrs.items():
        if key in known and known[key] != value:
            raise InputError(path, f"participant {pid!r}: {key} is {value!r} here but {known[key]!r} "
                                   f"in an earlier row", row)
        known[key] = value


def read_participants(path: str | Path) -> dict[str, dict]:
    """participant_id -> attributes from a `participant_id,<attribute>,...` file."""
    path = Path(path)
    header, rows = open_csv(path)
    cols = require_columns(path, header, ("participant_id",))
    extra = [(name, i) for i, name in enumerate(header) if name != "participant_id"]
    out: dict[str, dict] = {}
    for row, fields in rows:
        if len(fields) != len(header):
            raise InputError(path, f"expected {len(header)} fields, got {len(fields)}", row)
        pid = fields[cols["participant_id"]].strip()
        if not pid:
            raise InputError(path, "empty participant_id", row)
        if pid in out:
            raise InputError(path, f"participant {pid!r} is listed twice", row)
        out[pid] = _attributes(fields, extra, path, row)
    if not out:
        raise InputError(path, "no data rows after the header", row=2)
    return out


class Votes:
    """Validated votes as compact columns, in file order."""

    def __init__(self, stimuli: IdCodes):
        self.stimuli = stimuli
        self.participant_ids: list[str] = []
        self.participant = array("i")  # index into participant_ids
        self.stimulus = array("i")  # index into stimuli.ids
        self.emotion = array("b")  # index into EMOTIONS
        self.rt_ms = array("d")  # NaN where empty (a NaN in the file is refused)
        self.answered_at = array("q")  # microseconds since 1970 (UTC), _NO_TIME where empty
        self.row = array("q")  # the file's row number, for messages

    def __len__(self) -> int:
        return len(self.row)

    def first_duplicate(self) -> tuple[int, int] | None:
        """Indices (first vote, later vote) of the earliest vote repeating an earlier pair, or None."""
        keys = (np.frombuffer(self.participant, np.int32).astype(np.int64) * max(len(self.stimuli), 1)
                + np.frombuffer(self.stimulus, np.int32))
        order = np.argsort(keys, kind="stable")  # equal pairs stay in file order
        repeated = keys[order[1:]] == keys[order[:-1]]
        if not repeated.any():
            return None
        later = int(order[1:][repeated].min())
        return int(np.flatnonzero(keys == keys[later])[0]), later

    def table(self) -> pa.Table:
        def coded(codes: array, values) -> pa.DictionaryArray:
            dtype = np.int8 if codes.typecode == "b" else np.int32
            return pa.DictionaryArray.from_arrays(np.frombuffer(codes, dtype), pa.array(values))

        times = np.frombuffer(self.answered_at, np.int64)
        return pa.table({
            "participant_id": coded(self.participant, self.participant_ids),
            "stimulus_id": coded(self.stimulus, self.stimuli.ids),
            "emotion": coded(self.emotion, EMOTIONS),
            "rt_ms": pa.array(np.frombuffer(self.rt_ms, np.float64), pa.float64(), from_pandas=True),
            "answered_at": pa.array(times, pa.timestamp("us"), mask=times == _NO_TIME),
            "_row": pa.array(np.frombuffer(self.row, np.int64)),
        })


def _answered_at(text: str, path: Path, row: int) -> int:
    """Microseconds since 1970 (UTC) of an ISO date-time; one with a zone is converted to UTC,
    which must still fall in years 1 to 9999 (0001-01-01T00:00:00+01:00 does not)."""
    try:
        if not text.isascii():
            raise ValueError
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(path, f"answered_at {text[:40]!r} is not an ISO date-time", row) from None
    micros = (when - (_EPOCH if when.tzinfo is None else _EPOCH_UTC)) // _MICROSECOND
    if not _FIRST_MICROS <= micros <= _LAST_MICROS:
        raise InputError(path, f"answered_at {text[:40]!r} is out of range (years 1 to 9999 in UTC)", row)
    return micros


def read_votes(path: Path, stimuli: IdCodes) -> tuple[Votes, dict[str, dict]]:
    """Validated votes, and participant attributes from extra columns. Only in-file duplicates
    are refused here; the store's own votes are checked in the write transaction."""
    header, rows = open_csv(path)
    cols = require_columns(path, header, VOTE_COLUMNS)
    extra = [(name, i) for i, name in enumerate(header) if name not in VOTE_COLUMNS + OPTIONAL_COLUMNS]
    i_pid, i_sid, i_emotion = (cols[c] for c in VOTE_COLUMNS)
    i_rt, i_when = cols.get("rt_ms"), cols.get("answered_at")
    votes = Votes(stimuli)
    participant_code: dict[str, int] = {}
    attributes: dict[str, dict] = {}
    for row, fields in rows:
        if len(fields) != len(header):
            raise InputError(path, f"expected {len(header)} fields, got {len(fields)}", row)
        pid = fields[i_pid].strip()
        sid = fields[i_sid].strip()
        if not pid:
            raise InputError(path, "empty participant_id", row)
        code = stimuli.code(sid)
        if code is None:
            raise InputError(path, f"unknown stimulus_id {sid[:60]!r} (not in the store's stimuli)", row)
        try:
            emotion = EMOTIONS.index(parse_emotion_name(fields[i_emotion]))
        except ValueError as err:
            raise InputError(path, str(err), row) from None
        rt = float("nan")
        if i_rt is not None and fields[i_rt].strip():
            rt = ascii_real(fields[i_rt])
            if rt is None or rt < 0:
                raise InputError(path, f"rt_ms {fields[i_rt][:40]!r} is not a finite time >= 0 in ms", row)
        when = _NO_TIME
        if i_when is not None and fields[i_when].strip():
            when = _answered_at(fields[i_when].strip(), path, row)
        if pid not in participant_code:
            participant_code[pid] = len(votes.participant_ids)
            votes.participant_ids.append(pid)
        votes.participant.append(participant_code[pid])
        votes.stimulus.append(code)
        votes.emotion.append(emotion)
        votes.rt_ms.append(rt)
        votes.answered_at.append(when)
        votes.row.append(row)
        attrs = _attributes(fields, extra, path, row)
        if attrs:
            _merge_attributes(attributes, pid, attrs, path, row)
    if not len(votes):
        raise InputError(path, "no data rows after the header", row=2)
    duplicate = votes.first_duplicate()
    if duplicate is not None:
        first, later = duplicate
        raise InputError(path, f"duplicate vote of participant {votes.participant_ids[votes.participant[later]]!r} "
                               f"for {stimuli.ids[votes.stimulus[later]].as_py()!r} (first in row {votes.row[first]})",
                         votes.row[later])
    return votes, attributes


def import_votes(store: Store, path: str | Path, participants_path: str | Path | None = None) -> int:
    """Import a votes file (and optionally a participants file); returns the number of votes added."""
    path = Path(path)
    with store.read() as con:
        stimuli = IdCodes(con.sql("SELECT stimulus_id FROM stimuli").to_arrow_table().column(0))
    if not len(stimuli):
        raise InputError(path, "the store has no stimuli to vote on; run `disfer build` first")
    votes, attributes = read_votes(path, stimuli)
    if participants_path is not None:
        listed = read_participants(participants_path)
        for pid, attrs in listed.items():
            _merge_attributes(attributes, pid, attrs, Path(participants_path), row=None)
    table = votes.table()
    people = list(dict.fromkeys([*attributes, *votes.participant_ids]))

    def write(con) -> int:
        clash = con.execute(
            "SELECT n._row, n.participant_id, n.stimulus_id FROM new_votes n"
            " JOIN votes v ON v.participant_id = n.participant_id AND v.stimulus_id = n.stimulus_id"
            " ORDER BY n._row LIMIT 1").fetchall()
        if clash:
            row, pid, sid = clash[0]
            raise InputError(path, f"participant {pid!r} already has a vote for {sid!r} in the store", int(row))
        existing = {pid: json.loads(attrs) if attrs else {} for pid, attrs in con.execute(
            "SELECT participant_id, attributes FROM participants"
            " WHERE participant_id IN (SELECT participant_id FROM these_people)").fetchall()}
        new = [(pid, json.dumps(attributes[pid], allow_nan=False) if attributes.get(pid) else None)
               for pid in people if pid not in existing]
        updated = [(json.dumps({**existing[pid], **attrs}, allow_nan=False), pid)
                   for pid, attrs in attributes.items()
                   if pid in existing and attrs and {**existing[pid], **attrs} != existing[pid]]
        new_people = pa.table({"participant_id": pa.array([p for p, _ in new], pa.string()),
                               "attributes": pa.array([a for _, a in new], pa.string())})
        with registered(con, new_people=new_people):
            con.execute("INSERT INTO participants (participant_id, crowd, attributes)"
                        " SELECT participant_id, 'study', attributes::JSON FROM new_people")
        for attrs_json, pid in updated:
            con.execute("UPDATE participants SET attributes = ?::JSON WHERE participant_id = ?",
                        [attrs_json, pid])
        con.execute("INSERT INTO votes (participant_id, stimulus_id, emotion, rt_ms, answered_at)"
                    " SELECT participant_id, stimulus_id, emotion, rt_ms, answered_at FROM new_votes")
        return table.num_rows

    def write_registered(con) -> int:
        with registered(con, new_votes=table, these_people=pa.table({"participant_id": pa.array(people)})):
            return write(con)

    return store.write_retrying(write_registered)
