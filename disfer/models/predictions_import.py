"""Import predictions of a model run outside the project (a commercial API, a lab's own network).

The CSV has a `stimulus_id` column (the ids `export-stimuli` writes) and either the seven
probability columns anger, disgust, fear, happiness, neutral, sadness, surprise (each row >= 0 and
summing to 1 within SUM_TOLERANCE) or one `emotion` column (a name; stored as probability 1).
The model is registered with family 'external'; importing again under the same name replaces its
predictions. Everything is validated before one write transaction: a bad file changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from disfer.emotions import EMOTIONS, parse_emotion_name
from disfer.errors import ConfigError, InputError

SUM_TOLERANCE = 0.01
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,99}$")


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise InputError(path, "no such file")
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(path, "file is empty")
    if b"\x00" in raw[:4096]:
        raise InputError(path, "not a text CSV file (binary content)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(path, "not a text CSV file (not UTF-8)") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as err:
        raise InputError(path, f"malformed CSV: {err}") from None
    header = [h.strip().lower() for h in rows[0]]
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if not body:
        raise InputError(path, "no prediction rows after the header")
    return header, body


def parse_predictions(path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """(rows: stimulus_id, predicted; probabilities (N, 7) in EMOTIONS order), validated."""
    path = Path(path)
    header, body = _read_rows(path)
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
    ids, probs, seen = [], np.zeros((len(body), 7)), {}
    width = max([sid_col, *cols]) + 1
    for i, row in enumerate(body):
        line = i + 2
        if len(row) < width:
            raise InputError(path, f"expected at least {width} fields, found {len(row)}", row=line)
        sid = row[sid_col].strip()
        if not sid:
            raise InputError(path, "empty stimulus_id", row=line)
        if sid in seen:
            raise InputError(path, f"stimulus {sid!r} appears twice (first on row {seen[sid]})", row=line)
        seen[sid] = line
        ids.append(sid)
        if mode == "emotion":
            try:
                probs[i, EMOTIONS.index(parse_emotion_name(row[cols[0]]))] = 1.0
            except ValueError as err:
                raise InputError(path, str(err), row=line) from None
            continue
        for j, c in enumerate(cols):
            try:
                value = float(row[c])
            except ValueError:
                raise InputError(path, f"{EMOTIONS[j]}: {row[c]!r} is not a number", row=line) from None
            if not math.isfinite(value) or value < 0:
                raise InputError(path, f"{EMOTIONS[j]}: probability {row[c]!r} is negative or not finite",
                                 row=line)
            probs[i, j] = value
        total = probs[i].sum()
        if abs(total - 1.0) > SUM_TOLERANCE:
            raise InputError(path, f"probabilities sum to {total:.4g}, not 1", row=line)
    predicted = [EMOTIONS[k] for k in probs.argmax(axis=1)]
    return pd.DataFrame({"stimulus_id": ids, "predicted": predicted, "_row": range(2, len(ids) + 2)}), probs


def import_predictions(store, path: str | Path, model_id: str) -> int:
    """Store a model's predictions from a CSV (rules above); returns the number of rows imported."""
    if not MODEL_NAME.match(model_id or ""):
        raise ConfigError(f"bad model name {model_id!r}: use letters, digits, '_', '-', '.', '+'")
    rows, probs = parse_predictions(path)
    frame = rows[["stimulus_id", "predicted"]].assign(**{e: probs[:, j] for j, e in enumerate(EMOTIONS)})
    frame.insert(0, "model_id", model_id)

    def write(con) -> int:
        # fetchall, not fetchone: DuckDB refuses new work on a connection with an unfinished result.
        found = con.execute("SELECT family FROM models WHERE model_id = ?", [model_id]).fetchall()
        known = found[0] if found else None
        if known is not None and known[0] != "external":
            raise ConfigError(f"model {model_id!r} is a built-in model ({known[0]}); "
                              "import external predictions under another name")
        con.register("import_ids", rows[["stimulus_id", "_row"]])
        unknown = con.execute(
            "SELECT i.stimulus_id, i._row FROM import_ids i ANTI JOIN stimuli s USING (stimulus_id)"
            " ORDER BY i._row LIMIT 1").fetchall()
        if unknown:
            unknown = unknown[0]
            raise InputError(path, f"unknown stimulus {unknown[0]!r} (not in this store)", row=int(unknown[1]))
        if known is None:
            con.execute("INSERT INTO models (model_id, family, config) VALUES (?, 'external', ?)",
                        [model_id, json.dumps({"imported_from": Path(path).name})])
        con.execute("DELETE FROM predictions WHERE model_id = ?", [model_id])
        con.register("import_preds", frame)
        con.execute("INSERT INTO predictions (model_id, stimulus_id, anger, disgust, fear, happiness, neutral,"
                    " sadness, surprise, predicted) SELECT model_id, stimulus_id, anger, disgust, fear,"
                    " happiness, neutral, sadness, surprise, predicted FROM import_preds")
        return len(frame)

    return store.write_retrying(write)
