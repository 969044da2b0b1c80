"""Import the crowd study's votes, as exported by a crowdsourcing platform.

Votes file: `participant_id,stimulus_id,emotion[,rt_ms][,answered_at]`; any further column (age,
gender, country, ...) is a participant attribute. An optional participants file holds
`participant_id` plus attribute columns. Participants are created on first sight with crowd 'study'.
The whole file is validated before anything is written, then written in one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from disfer.data.ingest import open_csv, require_columns
from disfer.emotions import parse_emotion_name
from disfer.errors import InputError
from disfer.store import Store, registered

VOTE_COLUMNS = ("participant_id", "stimulus_id", "emotion")
OPTIONAL_COLUMNS = ("rt_ms", "answered_at")


def _attribute_value(text: str) -> object:
    """'34' -> 34, '0.5' -> 0.5, anything else stays text, so ages and scores compare as numbers."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _merge_attributes(into: dict[str, dict], pid: str, attrs: dict, path: Path, row: int) -> None:
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
    out: dict[str, dict] = {}
    for row, fields in rows:
        if len(fields) != len(header):
            raise InputError(path, f"expected {len(header)} fields, got {len(fields)}", row)
        pid = fields[cols["participant_id"]].strip()
        if not pid:
            raise InputError(path, "empty participant_id", row)
        if pid in out:
            raise InputError(path, f"participant {pid!r} is listed twice", row)
        out[pid] = {name: _attribute_value(fields[i].strip()) for name, i in cols.items()
                    if name != "participant_id" and fields[i].strip()}
    if not out:
        raise InputError(path, "no data rows after the header", row=2)
    return out


def read_votes(path: Path, known_stimuli: set[str], stored_pairs: set[tuple[str, str]]):
    """Validated votes as column lists, and participant attributes from extra columns."""
    header, rows = open_csv(path)
    cols = require_columns(path, header, VOTE_COLUMNS)
    extra = [name for name in header if name not in VOTE_COLUMNS + OPTIONAL_COLUMNS]
    votes: dict[str, list] = {name: [] for name in VOTE_COLUMNS + OPTIONAL_COLUMNS}
    attributes: dict[str, dict] = {}
    first_row: dict[tuple[str, str], int] = {}
    for row, fields in rows:
        if len(fields) != len(header):
            raise InputError(path, f"expected {len(header)} fields, got {len(fields)}", row)
        pid = fields[cols["participant_id"]].strip()
        sid = fields[cols["stimulus_id"]].strip()
        if not pid:
            raise InputError(path, "empty participant_id", row)
        if sid not in known_stimuli:
            raise InputError(path, f"unknown stimulus_id {sid!r} (not in the store's stimuli)", row)
        try:
            emotion = parse_emotion_name(fields[cols["emotion"]])
        except ValueError as err:
            raise InputError(path, str(err), row) from None
        if (pid, sid) in first_row:
            raise InputError(path, f"duplicate vote of participant {pid!r} for {sid!r} "
                                   f"(first in row {first_row[(pid, sid)]})", row)
        if (pid, sid) in stored_pairs:
            raise InputError(path, f"participant {pid!r} already has a vote for {sid!r} in the store", row)
        first_row[(pid, sid)] = row
        rt = None
        if "rt_ms" in cols and fields[cols["rt_ms"]].strip():
            try:
                rt = float(fields[cols["rt_ms"]])
            except ValueError:
                rt = -1.0
            if not rt >= 0:
                raise InputError(path, f"rt_ms {fields[cols['rt_ms']]!r} is not a time >= 0 in ms", row)
        when = None
        if "answered_at" in cols and fields[cols["answered_at"]].strip():
            text = fields[cols["answered_at"]].strip()
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                raise InputError(path, f"answered_at {text!r} is not an ISO date-time", row) from None
            if when.tzinfo is not None:  # stored as UTC without zone
                when = (when - when.utcoffset()).replace(tzinfo=None)
        for name, value in zip(VOTE_COLUMNS + OPTIONAL_COLUMNS, (pid, sid, emotion, rt, when), strict=True):
            votes[name].append(value)
        attrs = {name: _attribute_value(fields[cols[name]].strip()) for name in extra if fields[cols[name]].strip()}
        _merge_attributes(attributes, pid, attrs, path, row)
    if not votes["participant_id"]:
        raise InputError(path, "no data rows after the header", row=2)
    return votes, attributes


def import_votes(store: Store, path: str | Path, participants_path: str | Path | None = None) -> int:
    """Import a votes file (and optionally a participants file); returns the number of votes added."""
    path = Path(path)
    with store.read() as con:
        known = {r[0] for r in con.execute("SELECT stimulus_id FROM stimuli").fetchall()}
        stored_pairs = set(con.execute("SELECT participant_id, stimulus_id FROM votes").fetchall())
        existing = {r[0]: json.loads(r[1]) if r[1] else {}
                    for r in con.execute("SELECT participant_id, attributes FROM participants").fetchall()}
    if not known:
        raise InputError(path, "the store has no stimuli to vote on; run `disfer build` first")
    votes, attributes = read_votes(path, known, stored_pairs)
    if participants_path is not None:
        listed = read_participants(participants_path)
        for pid, attrs in listed.items():
            _merge_attributes(attributes, pid, attrs, Path(participants_path), row=None)

    new = [(pid, json.dumps(attributes.get(pid) or {}) if attributes.get(pid) else None)
           for pid in dict.fromkeys(list(attributes) + votes["participant_id"]) if pid not in existing]
    updated = [(json.dumps({**existing[pid], **attrs}), pid) for pid, attrs in attributes.items()
               if pid in existing and attrs and {**existing[pid], **attrs} != existing[pid]]
    table = pa.table({
        "participant_id": pa.array(votes["participant_id"], pa.string()),
        "stimulus_id": pa.array(votes["stimulus_id"], pa.string()),
        "emotion": pa.array(votes["emotion"], pa.string()),
        "rt_ms": pa.array(votes["rt_ms"], pa.float64()),
        "answered_at": pa.array(votes["answered_at"], pa.timestamp("us")),
    })
    people = pa.table({"participant_id": pa.array([p for p, _ in new], pa.string()),
                       "attributes": pa.array([a for _, a in new], pa.string())})

    def write(con) -> int:
        with registered(con, new_people=people, new_votes=table):
            con.execute("INSERT INTO participants (participant_id, crowd, attributes)"
                        " SELECT participant_id, 'study', attributes::JSON FROM new_people")
            for attrs_json, pid in updated:
                con.execute("UPDATE participants SET attributes = ?::JSON WHERE participant_id = ?",
                            [attrs_json, pid])
            con.execute("INSERT INTO votes (participant_id, stimulus_id, emotion, rt_ms, answered_at)"
                        " SELECT participant_id, stimulus_id, emotion, rt_ms, answered_at FROM new_votes")
        return table.num_rows

    return store.write_retrying(write)
