"""Small file writers shared by tests (fixtures stay in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from disfer.emotions import EMOTIONS
from disfer.store import CONNECT_CONFIG


def write_votes_csv(path: Path, db: Path, participants: int = 30) -> Path:
    """Every stimulus of the store at `db` rated by each of `participants` people, as the votes
    import reads it (participant_id,stimulus_id,emotion,rt_ms)."""
    con = duckdb.connect(str(db), read_only=True, config=CONNECT_CONFIG)
    ids = [r[0] for r in con.execute("SELECT stimulus_id FROM stimuli ORDER BY stimulus_id").fetchall()]
    con.close()
    lines = ["participant_id,stimulus_id,emotion,rt_ms"]
    for p in range(participants):
        for k, sid in enumerate(ids):
            lines.append(f"p{p:04d},{sid},{EMOTIONS[(p + k) % 7]},{900 + (p * 7 + k) % 400}")
    path.write_text("\n".join(lines) + "\n")
    return path
