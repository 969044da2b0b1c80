"""Import predictions of a model run outside the project (a commercial API, a lab's own network).

The CSV has a `stimulus_id` column (the ids `export-stimuli` writes) and either the seven
probability columns anger, disgust, fear, happiness, neutral, sadness, surprise (each row >= 0 and
summing to 1 within SUM_TOLERANCE) or one `emotion` column (a name; stored as probability 1).
The model is registered with family 'external'; importing again under the same name replaces its
predictions. The file is read row by row and each row checked as it is read (disfer.csvio's
rules: no duplicate column, no control character, plain ASCII numbers), against the store's
stimulus ids, so the first bad row stops the import and memory is bounded by the store's stimuli,
not the file's size. Everything is then written in one transaction: a bad file changes nothing.
"""

from __future__ import annotations

import json
import re
from array import array
from pathlib import Path

import numpy as np
import pyarrow as pa

from disfer.csvio import IdCodes, ascii_real, is_plain_real, open_csv
from disfer.emotions import EMOTIONS, parse_emotion_name
from disfer.errors import ConfigError, InputError
from disfer.store import registered

SUM_TOLERANCE = 0.01
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,99}$")


class Predictions:
    """Validated predictions as compact columns: a code into the store's stimulus ids, seven
    probabilities and the file's row number per prediction, in file order."""

    def __init__(self, stimuli: IdCodes):
        self.stimuli = stimuli
        self.stimulus = array("i")
        self.probs = array("d")  # 7 a row, in EMOTIONS order
        self.row = array("q")

    def __len__(self) -> int:
        return len(self.row)

    def probabilities(self) -> np.ndarray:
        return np.frombuffer(self.probs, np.float64).reshape(-1, len(EMOTIONS))

    def table(self, model_id: str) -> pa.Table:
        probs = self.probabilities()
        codes = np.frombuffer(self.stimulus, np.int32)
        return pa.table({
            "model_id": pa.DictionaryArray.from_arrays(np.zeros(len(codes), np.int8), pa.array([model_id])),
            "stimulus_id": pa.DictionaryArray.from_arrays(codes, self.stimuli.ids),
            **{e: probs[:, j] for j, e in enumerate(EMOTIONS)},
            "predicted": pa.DictionaryArray.from_arrays(probs.argmax(axis=1).astype(np.int8),
                                                        pa.array(EMOTIONS, pa.string())),
            "_row": np.frombuffer(self.row, np.int64),
        })


def parse_predictions(path: str | Path, stimuli: IdCodes) -> Predictions:
    """Every row of a predictions file, validated as it is read against the store's stimulus ids:
    an InputError names the first bad row. Memory is bounded by the store's stimuli, not the
    file: a valid file holds each stimulus at most once."""
    path = Path(path)
    header, rows = open_csv(path)
    if "stimulus_id" not in header:
        raise InputError(path, "missing column 'stimulus_id'", row=1)
    sid_col = header.index("stimulus_id")
    have_probs = [e in header for e in EMOTIONS]
    if all(have_probs):
        cols = [header.index(e) for e in EMOTIONS]
        mode = "probabilities"
    elif "emotion" in header:
        cols = [header.index("emotion")]
        mode = "emotion"
    else:
        missing = [e for e, ok in zip(EMOTIONS, have_probs, strict=True) if not ok]
        raise InputError(path, "needs an 'emotion' column or the seven probability columns "
                         f"(missing: {', '.join(missing)})", row=1)
    first_row = array("q", bytes(8 * len(stimuli)))  # per stimulus: the row it came in, or 0
    out = Predictions(stimuli)
    one_hot = [[1.0 if k == j else 0.0 for k in range(len(EMOTIONS))] for j in range(len(EMOTIONS))]
    width = max([sid_col, *cols]) + 1
    for line, row in rows:
        if len(row) < width:
            raise InputError(path, f"expected at least {width} fields, found {len(row)}", row=line)
        sid = row[sid_col].strip()
        if not sid:
            raise InputError(path, "empty stimulus_id", row=line)
        code = stimuli.code(sid)
        if code is None:
            raise InputError(path, f"unknown stimulus {sid[:60]!r} (not in this store)", row=line)
        if first_row[code]:
            raise InputError(path, f"stimulus {sid!r} appears twice (first on row {first_row[code]})", row=line)
        if mode == "emotion":
            try:
                values = one_hot[EMOTIONS.index(parse_emotion_name(row[cols[0]]))]
            except ValueError as err:
                raise InputError(path, str(err), row=line) from None
        else:
            values = [_probability(row[c], EMOTIONS[j], path, line) for j, c in enumerate(cols)]
            total = sum(values)
            if abs(total - 1.0) > SUM_TOLERANCE:
                raise InputError(path, f"probabilities sum to {total:.4g}, not 1", row=line)
        first_row[code] = line
        out.stimulus.append(code)
        out.probs.extend(values)
        out.row.append(line)
    if not len(out):
        raise InputError(path, "no prediction rows after the header", row=2)
    return out


def _probability(text: str, emotion: str, path: Path, line: int) -> float:
    value = ascii_real(text)
    if value is None:
        kind = "a finite number" if is_plain_real(text) else "a number"  # 1e309 overflows
        raise InputError(path, f"{emotion}: {text[:40]!r} is not {kind}", row=line)
    if value < 0:
        raise InputError(path, f"{emotion}: probability {text[:40]!r} is negative", row=line)
    return value


def import_predictions(store, path: str | Path, model_id: str) -> int:
    """Store a model's predictions from a CSV (rules above); returns the number of rows imported."""
    if not MODEL_NAME.match(model_id or ""):
        raise ConfigError(f"bad model name {model_id!r}: use letters, digits, '_', '-', '.', '+'")
    with store.read() as con:
        stimuli = IdCodes(con.sql("SELECT stimulus_id FROM stimuli").to_arrow_table().column(0))
    table = parse_predictions(path, stimuli).table(model_id)

    def write(con) -> int:
        # fetchall, not fetchone: DuckDB refuses new work on a connection with an unfinished result.
        found = con.execute("SELECT family FROM models WHERE model_id = ?", [model_id]).fetchall()
        known = found[0] if found else None
        if known is not None and known[0] != "external":
            raise ConfigError(f"model {model_id!r} is a built-in model ({known[0]}); "
                              "import external predictions under another name")
        with registered(con, import_preds=table):
            # Stimuli deleted since the file was checked (a concurrent `build --replace`).
            unknown = con.execute(
                "SELECT i.stimulus_id, i._row FROM import_preds i ANTI JOIN stimuli s USING (stimulus_id)"
                " ORDER BY i._row LIMIT 1").fetchall()
            if unknown:
                raise InputError(path, f"unknown stimulus {unknown[0][0]!r} (not in this store)",
                                 row=int(unknown[0][1]))
            if known is None:
                con.execute("INSERT INTO models (model_id, family, config) VALUES (?, 'external', ?)",
                            [model_id, json.dumps({"imported_from": Path(path).name})])
            con.execute("DELETE FROM predictions WHERE model_id = ?", [model_id])
            con.execute("INSERT INTO predictions (model_id, stimulus_id, anger, disgust, fear, happiness, neutral,"
                        " sadness, surprise, predicted) SELECT model_id, stimulus_id, anger, disgust, fear,"
                        " happiness, neutral, sadness, surprise, predicted FROM import_preds")
        return table.num_rows

    return store.write_retrying(write)
